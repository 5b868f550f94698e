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

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from fastdqn.agent import DQNAgent
from fastdqn.buffer import Batch, MemberBatch, ReplayBuffer
from fastdqn.config import Config
from fastdqn.device import restore_generator, should_compile
from fastdqn.envs import EnvSpaces
from fastdqn.networks import MLP
from fastdqn.optim import Adam, sync_target
from fastdqn.stacked_mlp import StackedViews, stacked_loss_and_grad, stacked_q, stacked_td_backward, stacked_td_target


def _rebind(module: torch.nn.Module, flat: Tensor, grad: Tensor | None) -> None:
    """Point `module`'s parameters (and their `.grad`) at consecutive slices of `flat` (P,) (and `grad`)."""
    offset = 0
    for parameter in module.parameters():
        n = parameter.numel()
        parameter.data = flat[offset : offset + n].view_as(parameter)
        if grad is not None:
            parameter.grad = grad[offset : offset + n].view_as(parameter)
        offset += n


def _stack(values: Sequence[float], device: torch.device) -> Tensor:
    return torch.tensor(list(values), dtype=torch.float32, device=device).unsqueeze(1)  # (K, 1)


class MemberAgents:
    """K Q-networks stacked along a leading axis, with their targets and Adam state.

    The MLP and dueling MLP update as one (`stacked_mlp.py`); other networks (the Nature CNN) keep
    the stacked state too, but update member by member through each agent's autograd update.

    Args:
        cfgs: one config per member; they must agree on every field that changes a tensor shape or
            the update's code path (checked by `fastdqn.group.check_group`).
        spaces: the env's observation and action spaces.
        device: where every tensor lives.
    Attributes:
        agents: one `DQNAgent` per member, built as a single run builds it. They hold each member's
            initial weights and are what `export` fills for saving and evaluating a member; the
            training state itself lives in the stacked tensors.
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
        self.looped = not isinstance(first, MLP)  # the Nature CNN: autograd, member by member (`_bind`)
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
        # as one function (`stacked_loss_and_grad`); a new member count (members leaving) recompiles
        self.compiled: Any = None
        if not self.looped and should_compile(cfg.compile, device):
            self.compiled = torch.compile(stacked_loss_and_grad, mode=cfg.compile_mode, dynamic=False)
        self.cuda_graphs = self.compiled is not None and device.type == "cuda" and cfg.compile_mode in ("reduce-overhead", "max-autotune")

    def _views(self) -> None:
        """Views of the stacked tensors: `StackedViews` for the MLPs; for other networks each member's
        agent is pointed at its rows (parameters, gradients, target, Adam state), so its own
        autograd update (`DQNAgent.update`) trains the stacked state in place."""
        if not self.looped:
            self.online_weights = StackedViews(self.online, self.shapes)
            self.target_weights = StackedViews(self.target, self.shapes)
            return
        for k, agent in enumerate(self.agents):
            _rebind(agent.q_network, self.online[k], self.grad[k])
            _rebind(agent.target_network, self.target[k], None)
            agent.online.data, agent.online.grad, agent.target.data = self.online[k], self.grad[k], self.target[k]
            mine, stacked = agent.optimizer, self.optimizer
            mine.params, mine.grads = self.online[k], self.grad[k]
            mine.exp_avg, mine.exp_avg_sq, mine.step_count = stacked.exp_avg[k], stacked.exp_avg_sq[k], stacked.step_count[k]

    @torch.no_grad()
    def act(self, obs: Tensor, epsilons: Sequence[float]) -> Tensor:
        """Epsilon-greedy actions (K, N) int64 for obs (K, N, *obs_shape); member k explores with
        its own generator and `epsilons[k]`, drawing what a single run's `DQNAgent.act` draws."""
        if self.looped:
            return torch.stack([agent.act(obs[k], epsilon) for k, (agent, epsilon) in enumerate(zip(self.agents, epsilons, strict=True))])
        greedy = stacked_q(self.online_weights, obs).argmax(dim=2)  # (K, N)
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
        if self.looped:
            return self._update_each(batch, active)
        if self.compiled is not None:
            if self.cuda_graphs:
                torch.compiler.cudagraph_mark_step_begin()  # a new step: the last replay's outputs may be reused
            grad, loss, q_mean, td_error = self.compiled(
                self.online, self.target, self.shapes, self.gamma, batch.obs, batch.action, batch.reward,
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
            self.optimizer.step(active=torch.from_numpy(active).to(self.device, non_blocking=True))
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

    def _update_each(self, batch: MemberBatch, active: np.ndarray) -> dict[str, Tensor]:
        """Each active member's own `DQNAgent.update` (autograd, its Adam step and target sync) on its rows."""
        zero = torch.zeros((), device=self.device)
        losses, q_means, td_errors = [zero] * self.k, [zero] * self.k, [torch.zeros_like(batch.reward[0])] * self.k
        for k in np.flatnonzero(active):
            pick = None if batch.weights is None else batch.weights[k]
            discount = None if batch.discount is None else batch.discount[k]
            rows = Batch(batch.obs[k], batch.action[k], batch.reward[k], batch.next_obs[k], batch.terminated[k], pick, None, discount)
            with torch.enable_grad():  # `update` runs under no_grad for the written-out backward
                stats = self.agents[k].update(rows)
            losses[k], q_means[k], td_errors[k] = stats["loss"], stats["q_mean"], stats["td_error"]
        self.updates += active
        return {"loss": torch.stack(losses), "q_mean": torch.stack(q_means), "td_error": torch.stack(td_errors)}

    def set_learning_rates(self, rates: Sequence[float]) -> None:
        """Member k's Adam step size becomes `rates[k]`; each member's agent keeps it too (a looped
        member steps with its own optimizer, and `export` saves it)."""
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
        for agent, updates in zip(self.agents, self.updates, strict=True):
            agent.updates = int(updates)  # a looped member's own update counts its target syncs
        for generator, saved in zip(self.generators, state["generators"], strict=True):
            restore_generator(generator, saved)
