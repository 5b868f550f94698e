"""K Q-networks trained as one: parameters, targets and Adam state with a leading member axis.

Why: on a CPU, each op of a small MLP update costs mostly fixed overhead, and on a GPU one run
leaves the device idle, so K updates done as batched matmuls (`torch.bmm`) cost little more than
one. The TD loss's backward is the written-out one of `backprop.py`, batched over members
(`stacked_mlp.py`), for the MLP and the dueling MLP, with PER importance weights.

Member k is the run its `Config` describes, on its own: its initial weights are those
`DQNAgent(cfg_k)` draws after `torch.manual_seed(seed_k)`, and its exploration draws from its own
`torch.Generator` seeded as the single run's agent seeds it, so member k acts, updates and syncs
its target exactly as a single run with its config does (to float tolerance: batched matmuls sum in
another order). Values that change no tensor shape may differ between members: learning rate, Adam
eps, gamma, epsilon schedule, target period, tau and gradient clipping, each held as a (K,) tensor
or a host array here.

Shapes: K = members, B = batch, N = envs per member, H = hidden, A = actions, P = parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from fastdqn.agent import DQNAgent
from fastdqn.buffer import MemberBatch, ReplayBuffer
from fastdqn.config import Config
from fastdqn.device import restore_generator, should_compile
from fastdqn.envs import EnvSpaces
from fastdqn.networks import MLP
from fastdqn.optim import Adam, sync_target
from fastdqn.stacked_mlp import StackedViews, stacked_loss_and_grad, stacked_q, stacked_td_backward, stacked_td_target
from fastdqn.stacked_net import StackedNet


def _stack(values: Sequence[float], device: torch.device) -> Tensor:
    return torch.tensor(list(values), dtype=torch.float32, device=device).unsqueeze(1)  # (K, 1)


class MemberAgents:
    """K Q-networks stacked along a leading axis, with their targets and Adam state.

    The MLP and dueling MLP update as one through their written-out backward (`stacked_mlp.py`);
    other networks (the Nature CNN) through `torch.func`'s `vmap` of each member's autograd loss
    (`stacked_net.py`). Both hand the same (K, P) gradient to one Adam, clipping and target sync.

    Args:
        cfgs: one config per member; they must agree on every field that changes a tensor shape or
            the update's code path (checked by `fastdqn.group.check_group`).
        spaces: the env's observation and action spaces.
        device: where every tensor lives.
    Attributes:
        agents: one `DQNAgent` per member, built as a single run builds it. They hold each member's
            initial weights and are what `export` fills for saving and evaluating a member; the
            training state itself lives in the stacked tensors.
        net: the `vmap`ped network of non-MLP members (None for the MLPs).
        online, target: (K, P) float32 flat parameters (the order of `MLP.weights()`).
    """

    def __init__(self, cfgs: Sequence[Config], spaces: EnvSpaces, device: torch.device):
        cfg = cfgs[0]
        self.cfgs = list(cfgs)
        self.k = len(cfgs)
        self.device = device
        self.n_actions = spaces.n_actions
        self.agents: list[DQNAgent] = []
        for member in self.cfgs:
            torch.manual_seed(member.seed)  # what a single run's seed_everything leaves for DQNAgent's init
            self.agents.append(DQNAgent(member.replace(compile="off"), spaces, device))
        self.online = torch.stack([a.online.data for a in self.agents])  # (K, P)
        self.target = torch.stack([a.target.data for a in self.agents])  # (K, P)
        self.grad = torch.zeros_like(self.online)
        self.optimizer = Adam(self.online, self.grad, lr=[c.learning_rate for c in cfgs], eps=[c.adam_eps for c in cfgs])
        self.updates = np.zeros(self.k, dtype=np.int64)  # gradient steps per member, on the host
        self.generators = [a.generator for a in self.agents]  # each seeded seed_k + 1, as the single run's
        first = self.agents[0].q_network
        # non-MLP members: vmapped where it pays (CUDA, or a compiled step: one graph for K members);
        # member by member on an eager CPU, where vmap's grouped convs measured 1.5x slower than a loop
        compiled = should_compile(cfg.compile, device)
        vectorize = device.type == "cuda" or compiled
        self.net = None if isinstance(first, MLP) else StackedNet(first, vectorize)
        self.shapes = [tuple(w.shape) for w in first.weights()] if isinstance(first, MLP) else []
        self._views()
        self.gamma = _stack([c.gamma for c in cfgs], device)
        self.max_norm = torch.tensor([c.max_grad_norm or float("inf") for c in cfgs], device=device)  # (K,); inf: off
        self.clip_value = _stack([c.grad_clip_value or float("inf") for c in cfgs], device)
        self.clip_values = any(c.grad_clip_value > 0 for c in cfgs)
        self.clip_norms = any(c.max_grad_norm > 0 for c in cfgs)
        self.tau = _stack([c.tau for c in cfgs], device)
        self.hard_sync = all(c.tau >= 1.0 for c in cfgs)
        self.target_every = np.array([c.target_update_every for c in cfgs], dtype=np.int64)
        self.double_dqn = cfg.double_dqn
        self.huber = cfg.loss == "huber"
        # `--compile` as a single run reads it (`auto`: on CUDA only): the stacked TD step compiled
        # as one function (`stacked_loss_and_grad`, or the vmapped network's); a new member count
        # (members leaving) recompiles
        self.step: Callable[..., tuple[Tensor, Tensor, Tensor, Tensor]] | None = None
        """The whole TD step (grad, loss, q_mean, td_error) as one function; None: the eager MLP's own."""
        if compiled:
            self.step = torch.compile(self._whole_step(), mode=cfg.compile_mode, dynamic=False)
        elif self.net is not None:
            self.step = self.net.loss_and_grad
        self.cuda_graphs = compiled and device.type == "cuda" and cfg.compile_mode in ("reduce-overhead", "max-autotune")

    def _whole_step(self) -> Callable[..., tuple[Tensor, Tensor, Tensor, Tensor]]:
        """The TD step to compile: the vmapped network's, or the stacked MLP's with its layer shapes bound."""
        if self.net is not None:
            return self.net.loss_and_grad
        shapes = self.shapes

        def mlp_step(online: Tensor, target: Tensor, gamma: Tensor, *batch: Any) -> tuple[Tensor, Tensor, Tensor, Tensor]:
            return stacked_loss_and_grad(online, target, shapes, gamma, *batch)

        return mlp_step

    def _views(self) -> None:
        """The MLPs' per-layer views of the stacked weights (`StackedViews`)."""
        self.online_weights = StackedViews(self.online, self.shapes)
        self.target_weights = StackedViews(self.target, self.shapes)

    @torch.no_grad()
    def act(self, obs: Tensor, epsilons: Sequence[float]) -> Tensor:
        """Epsilon-greedy actions (K, N) int64 for obs (K, N, *obs_shape); member k explores with
        its own generator and `epsilons[k]`, drawing what a single run's `DQNAgent.act` draws."""
        q = stacked_q(self.online_weights, obs) if self.net is None else self.net.q(self.online, obs)  # (K, N, A)
        greedy = q.argmax(dim=2)  # (K, N)
        n = greedy.shape[1]
        if all(e <= 0.0 for e in epsilons):
            return greedy
        randoms, explores = [], []
        for generator, epsilon in zip(self.generators, epsilons, strict=True):
            if epsilon <= 0.0:  # the single run draws nothing then
                randoms.append(torch.zeros(n, dtype=torch.int64, device=self.device))
                explores.append(torch.zeros(n, dtype=torch.bool, device=self.device))
                continue
            randoms.append(torch.randint(0, self.n_actions, (n,), generator=generator, device=self.device))
            explores.append(torch.rand(n, generator=generator, device=self.device) < epsilon)
        return torch.where(torch.stack(explores), torch.stack(randoms), greedy)

    @torch.no_grad()
    def update(self, batch: MemberBatch, active: np.ndarray) -> dict[str, Tensor]:
        """One gradient step for every member where `active` (K,) bool (host) is True; the others
        keep their weights, Adam state and counters untouched.

        Returns device tensors, never read back here: `loss` (K,), `q_mean` (K,), `td_error` (K, B).
        """
        if self.step is not None:
            if self.cuda_graphs:
                torch.compiler.cudagraph_mark_step_begin()  # a new step: the last replay's outputs may be reused
            grad, loss, q_mean, td_error = self.step(
                self.online, self.target, self.gamma, batch.obs, batch.action, batch.reward,
                batch.next_obs, batch.terminated, batch.weights, batch.discount, self.double_dqn, self.huber,
            )  # fmt: skip
            self.grad.copy_(grad)
            if self.cuda_graphs:  # graph outputs live in buffers the next replay overwrites; stats are read later
                loss, q_mean, td_error = loss.clone(), q_mean.clone(), td_error.clone()
        else:
            loss, q_mean, td_error = stacked_td_backward(
                self.online_weights, self.grad, batch.obs, batch.action, self._td_target(batch), self.huber, batch.weights
            )
        grads = self.grad
        if self.clip_values:
            grads.clamp_(-self.clip_value, self.clip_value)
        if self.clip_norms:  # clip_scale per member; the single run's fused Adam divides by it as it reads
            norms = torch.linalg.vector_norm(grads, dim=1)  # (K,)
            grads.div_(((norms + 1e-6) / self.max_norm).clamp_(min=1.0).unsqueeze(1))
        everyone = bool(active.all())
        if everyone and bool((self.updates == self.updates[0]).all()):
            self.optimizer.step()
        else:
            self.optimizer.step(active=active)
        self.updates += active
        due = active & (self.updates % self.target_every == 0)
        if due.any():
            self.sync_target(np.flatnonzero(due))
        return {"loss": loss, "q_mean": q_mean, "td_error": td_error}

    def _td_target(self, batch: MemberBatch) -> Tensor:
        return stacked_td_target(
            self.online_weights,
            self.target_weights,
            self.gamma,
            batch.reward,
            batch.next_obs,
            batch.terminated,
            batch.discount,
            self.double_dqn,
        )

    def set_learning_rates(self, rates: Sequence[float]) -> None:
        """Member k's Adam step size becomes `rates[k]`; each member's agent keeps it too (`export` saves it)."""
        self.optimizer.set_lr(rates)
        for agent, rate in zip(self.agents, rates, strict=True):
            agent.optimizer.set_lr([rate])

    def sample(self, replay: ReplayBuffer, batch_size: int, active: np.ndarray) -> MemberBatch:
        return replay.sample_members(batch_size, active)

    def reprioritize(self, replay: ReplayBuffer, batch: MemberBatch, stats: dict[str, Tensor], active: np.ndarray) -> None:
        replay.update_member_priorities(batch, stats["td_error"], active)

    def finite(self, stats: dict[str, Tensor] | None) -> np.ndarray:
        """(K,) bool on the host: member k's weights and last loss are finite (one sync)."""
        finite = torch.isfinite(self.online).all(dim=1)
        if stats is not None:
            finite &= torch.isfinite(stats["loss"])
        return finite.cpu().numpy()

    def member_stats(self, stats: dict[str, Tensor] | None, slot: int) -> dict[str, Tensor] | None:
        """The member at `slot`'s part of the last update's stats; None before its first update."""
        return None if stats is None or self.updates[slot] == 0 else {name: value[slot] for name, value in stats.items()}

    @torch.no_grad()
    def sync_target(self, members: np.ndarray) -> None:
        """Hard copy (tau = 1) or Polyak average of the online weights into the targets of `members`."""
        sync_target(self.target, self.online, 1.0 if self.hard_sync else self.tau, torch.from_numpy(members).to(self.device))

    def keep(self, slots: Sequence[int]) -> None:
        """Go on with the members at `slots` only (the others stopped): every stacked tensor shrinks,
        so a group's tail costs what its remaining members cost."""
        index = torch.tensor(list(slots), dtype=torch.int64, device=self.device)
        for name in (
            "online",
            "target",
            "grad",
            "gamma",
            "max_norm",
            "clip_value",
            "tau",
        ):
            setattr(self, name, getattr(self, name).index_select(0, index))
        self.optimizer.keep(index, self.online, self.grad)
        self.updates, self.target_every = self.updates[list(slots)], self.target_every[list(slots)]
        self.cfgs = [self.cfgs[i] for i in slots]
        self.agents = [self.agents[i] for i in slots]
        self.generators = [self.generators[i] for i in slots]
        self.k = len(slots)
        self._views()

    def export(self, k: int) -> DQNAgent:
        """Member k as a `DQNAgent` (its weights, target, Adam state and counters copied in): to save,
        evaluate or keep using as a single agent."""
        agent = self.agents[k]
        agent.online.data.copy_(self.online[k])
        agent.target.data.copy_(self.target[k])
        agent.optimizer.exp_avg.copy_(self.optimizer.exp_avg[k])
        agent.optimizer.exp_avg_sq.copy_(self.optimizer.exp_avg_sq[k])
        agent.optimizer.step_count.copy_(self.optimizer.step_count[k])
        agent.updates = int(self.updates[k])
        return agent

    def state_dict(self) -> dict[str, Any]:
        return {
            "online": self.online.clone(),
            "target": self.target.clone(),
            "exp_avg": self.optimizer.exp_avg.clone(),
            "exp_avg_sq": self.optimizer.exp_avg_sq.clone(),
            "adam_steps": self.optimizer.step_count.clone(),
            "updates": torch.from_numpy(self.updates.copy()),
            "generators": [g.get_state() for g in self.generators],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.online.copy_(state["online"])
        self.target.copy_(state["target"])
        self.optimizer.load_state_dict({"exp_avg": state["exp_avg"], "exp_avg_sq": state["exp_avg_sq"], "step": state["adam_steps"]})
        self.updates = state["updates"].numpy().copy()
        for generator, saved in zip(self.generators, state["generators"], strict=True):
            restore_generator(generator, saved)
