"""DQNAgent: batched epsilon-greedy acting, the (optionally compiled) TD update, target sync, save/load."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from fastdqn.backprop import mlp_td_backward
from fastdqn.buffer import Batch
from fastdqn.config import Config
from fastdqn.device import resolve_device, restore_generator, should_compile
from fastdqn.envs import EnvSpaces
from fastdqn.networks import MLP, DuelingMLP, FrozenForward, build_q_network, has_written_out_backward, network_signature
from fastdqn.optim import Adam, FlatParameters, clip_scale, sync_target
from fastdqn.td import bootstrap_target

UpdateStats = dict[str, Tensor]


def _flat_grad_view(parameter: Tensor) -> Tensor:
    """The `.grad` FlatParameters bound to `parameter`: a view into the flat gradient Adam reads."""
    if parameter.grad is None:
        raise RuntimeError("a parameter has no flat gradient view; build FlatParameters(q_network) first")
    return parameter.grad


class DQNAgent:
    """An online Q-network, its target copy and their Adam state, all on one device.

    Args:
        cfg: learning settings (gamma, loss, double_dqn, clipping, target sync, compile, seed).
        spaces: observation shape/dtype and the number of actions.
        device: overrides `cfg.device` (already resolved), e.g. when loading a checkpoint.
    """

    def __init__(self, cfg: Config, spaces: EnvSpaces, device: torch.device | str | None = None):
        self.cfg = cfg
        self.spaces = spaces
        self.device = resolve_device(cfg.device) if device is None else torch.device(device)
        self.n_actions = spaces.n_actions
        self.q_network = build_q_network(cfg.network, spaces.obs_shape, spaces.n_actions, cfg.hidden_dim).to(self.device)
        self.target_network = copy.deepcopy(self.q_network).requires_grad_(False)  # a separate copy, never an alias
        self.online = FlatParameters(self.q_network)
        self.target = FlatParameters(self.target_network, grads=False)
        assert self.online.grad is not None
        self.optimizer = Adam(self.online.data, self.online.grad, lr=cfg.learning_rate, eps=cfg.adam_eps)
        self.updates = 0
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(cfg.seed + 1)
        self.compiled = should_compile(cfg.compile, self.device)
        self._acting_q = FrozenForward(self.q_network)  # no-grad forward over the live weights
        # TD targets: the same views when eager, the module (static parameters for CUDA graphs) when compiled
        self._online_q = FrozenForward(self.q_network, views=False) if self.compiled else self._acting_q
        self._target_q = FrozenForward(self.target_network, views=not self.compiled)
        self._loss_fn: Callable[..., tuple[Tensor, Tensor, Tensor]] = self._td_loss
        if self.compiled:
            self._loss_fn = torch.compile(self._td_loss, mode=cfg.compile_mode)
        # MLPs skip autograd when eager: their backward is written out in backprop.py (a fifth to a
        # third cheaper on a small CPU, where recording and walking the graph rivals the matmuls)
        self.explicit_backward = not self.compiled and has_written_out_backward(self.q_network)
        if self.explicit_backward:
            assert isinstance(self.q_network, MLP) and self._acting_q.weights is not None
            self._dueling = isinstance(self.q_network, DuelingMLP)
            self._weights = self._acting_q.weights  # the detached views acting reads
            self._grads = tuple(_flat_grad_view(w) for w in self.q_network.weights())
        self.cuda_graphs = self.compiled and self.device.type == "cuda" and cfg.compile_mode in ("reduce-overhead", "max-autotune")

    def q_values(self, obs: Tensor) -> Tensor:
        """Q-values (N, n_actions) float32 on the agent's device, for obs (N, *obs_shape); no autograd."""
        return self._acting_q(obs.to(self.device, non_blocking=True))

    def act(self, obs: Tensor, epsilon: float) -> Tensor:
        """Epsilon-greedy actions for every env in one forward pass; each env draws its own coin.

        Args:
            obs: (N, *obs_shape), any device.
            epsilon: probability that an env takes a uniform random action.
        Returns:
            actions: (N,) int64 on the agent's device.
        """
        greedy = self._acting_q(obs.to(self.device, non_blocking=True)).argmax(dim=1)  # (N,)
        if epsilon <= 0.0:
            return greedy
        n = greedy.shape[0]
        random_actions = torch.randint(0, self.n_actions, (n,), generator=self.generator, device=self.device)
        explore = torch.rand(n, generator=self.generator, device=self.device) < epsilon
        return torch.where(explore, random_actions, greedy)

    def td_target(self, reward: Tensor, next_obs: Tensor, terminated: Tensor, discount: Tensor | None = None) -> Tensor:
        """`r + gamma * Q_target(s', a*)`, a* from the online net (Double DQN) or the target's max.

        Args: reward (B,) float32, next_obs (B, *obs_shape), terminated (B,) bool, on the agent's device;
        n-step rows pass `discount` (B,) in place of gamma (see `td.bootstrap_target`: only a true
        terminal cuts the bootstrap). Returns: (B,) float32.
        """
        next_q_online = self._online_q(next_obs) if self.cfg.double_dqn else None
        return bootstrap_target(reward, self._target_q(next_obs), next_q_online, self.cfg.gamma, terminated, discount)

    def _td_loss(
        self,
        obs: Tensor,
        action: Tensor,
        reward: Tensor,
        next_obs: Tensor,
        terminated: Tensor,
        weights: Tensor | None,
        discount: Tensor | None = None,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Loss, mean Q and per-sample TD errors of one batch: the part that gets compiled.

        Pure tensor code with fixed shapes, so it compiles to one forward and one backward graph.
        The optimizer step stays outside: it mutates the flat parameters that the compiled graph
        reads, which functionalization refuses, and it is a single fused kernel anyway.
        """
        td_target = self.td_target(reward, next_obs, terminated, discount)
        q = self.q_network(obs).gather(1, action.unsqueeze(1)).squeeze(1)  # (B,)
        td_error = td_target - q
        if self.cfg.loss == "huber":
            elementwise = F.smooth_l1_loss(q, td_target, reduction="none")
        else:
            elementwise = td_error.square()
        loss = elementwise.mean() if weights is None else (weights * elementwise).mean()
        return loss, q.detach().mean(), td_error.detach()

    def update(self, batch: Batch | Mapping[str, Tensor]) -> UpdateStats:
        """One gradient step on `batch`; syncs the target every `target_update_every` steps.

        Returns device tensors, never read back here: `loss` (), `q_mean` (), `td_error` (B,).
        """
        if isinstance(batch, Batch):
            obs, action, reward, next_obs, terminated, weights = (
                batch.obs,
                batch.action,
                batch.reward,
                batch.next_obs,
                batch.terminated,
                batch.weights,
            )
            discount = batch.discount
        else:
            obs, action, reward, next_obs, terminated = (batch[k] for k in ("obs", "action", "reward", "next_obs", "terminated"))
            weights = batch.get("weights", None)
            discount = batch.get("discount", None)
        if self.cuda_graphs:
            torch.compiler.cudagraph_mark_step_begin()  # a new step: the previous replay's outputs may be reused
        if self.explicit_backward:
            td_target = self.td_target(reward, next_obs, terminated, discount)
            loss, q_mean, td_error = mlp_td_backward(
                self._weights, self._grads, obs, action, td_target, self.cfg.loss, weights, self._dueling
            )
        else:
            loss, q_mean, td_error = self._loss_fn(obs, action, reward, next_obs, terminated, weights, discount)
            self.online.zero_grad()
            loss.backward()
        grads = self.optimizer.grads
        if self.cfg.grad_clip_value > 0:
            grads.clamp_(-self.cfg.grad_clip_value, self.cfg.grad_clip_value)
        self.optimizer.step(clip_scale(grads, self.cfg.max_grad_norm) if self.cfg.max_grad_norm > 0 else None)
        self.updates += 1
        if self.updates % self.cfg.target_update_every == 0:
            self.sync_target()
        stats = {"loss": loss.detach(), "q_mean": q_mean, "td_error": td_error}
        if self.cuda_graphs:  # CUDA-graph outputs live in buffers the next replay overwrites; stats are read later
            stats = {name: value.clone() for name, value in stats.items()}
        return stats

    @torch.no_grad()
    def sync_target(self) -> None:
        """Hard copy (tau = 1) or Polyak average (tau < 1) of the online weights into the target."""
        sync_target(self.target.data, self.online.data, float(self.cfg.tau))

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to act and to keep learning; plain types and tensors only."""
        return {
            "format": "fastdqn-agent-1",
            "config": dataclasses.asdict(self.cfg),
            "spaces": {
                "obs_shape": list(self.spaces.obs_shape),
                "obs_dtype": str(self.spaces.obs_dtype).removeprefix("torch."),
                "n_actions": self.n_actions,
            },
            "signature": network_signature(self.q_network),
            "q_network": {k: v.detach().clone() for k, v in self.q_network.state_dict().items()},
            "target_network": {k: v.detach().clone() for k, v in self.target_network.state_dict().items()},
            "optimizer": self.optimizer.state_dict(),
            "updates": self.updates,
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        mine = network_signature(self.q_network)
        if state["signature"] != mine:
            raise ValueError(f"checkpoint network {state['signature']} does not match this agent's {mine}")
        self.q_network.load_state_dict(state["q_network"])  # copies into the flat views in place
        self.target_network.load_state_dict(state["target_network"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.updates = int(state["updates"])
        restore_generator(self.generator, state["generator"])

    def save(self, path: str | Path) -> Path:
        from fastdqn.checkpoint import save_atomic

        return save_atomic({"agent": self.state_dict()}, Path(path))

    @classmethod
    def load(cls, path: str | Path, device: str | None = None) -> DQNAgent:
        """Rebuild an agent from a checkpoint written by `train` or `save` (weights_only load)."""
        from fastdqn.checkpoint import load_checkpoint

        state = load_checkpoint(Path(path))["agent"]
        cfg = Config.from_dict(state["config"])
        if device is not None:
            cfg = cfg.replace(device=device)
        elif cfg.device.startswith("cuda") and not torch.cuda.is_available():
            cfg = cfg.replace(device="cpu")  # a GPU-trained agent still evaluates on a CPU machine
        spaces_state = state["spaces"]
        spaces = EnvSpaces(tuple(spaces_state["obs_shape"]), getattr(torch, spaces_state["obs_dtype"]), int(spaces_state["n_actions"]))
        agent = cls(cfg.replace(compile="off"), spaces)
        agent.load_state_dict(state)
        return agent
