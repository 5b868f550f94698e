"""The one env interface the training loop, evaluation and every producer of rows step through.

A `DeviceVectorEnv` takes and returns tensors on its device and autoresets in the same step: where
an episode ends, `next_obs` is already the first observation of the next episode and `final_obs`
the true last observation of the one that ended, the `next_obs` a transition stores. A truncated
row bootstraps from it; only `terminated` cuts the bootstrap.

Two kinds implement it:
- `TorchVectorEnv` (classic.py): the env's state is a few tensors and the whole step is batched
  tensor ops, so nothing leaves the device and every row of every step is a transition.
- `GymnasiumEnv` (gymnasium.py): a numpy vector env inside; it owns the host<->device copies and
  Gymnasium's NEXT_STEP autoreset, whose reset step (the step after an episode ends returns the
  reset observation and ignores the action) is no transition: its rows come back with `valid`
  False and `EnvStep.transitions` drops them.

One interface for every producer of rows:
- one run (train.py, `Collector`): act on `obs`, `step`, store `transitions(obs, actions)`;
- many runs stacked along a leading axis: K members' envs are one `DeviceVectorEnv` of K x N envs
  (rows k*N..(k+1)*N-1 are member k's). A native env's resets already draw per env from
  (seed, env), so member k keeps the streams a single run with its seed would have;
- remote producers (actors in other processes): a `GymnasiumEnv` on the actor's CPU, whose
  `transitions` are the rows it ships to the learner.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol

import numpy as np
import torch
from torch import Tensor

from fastdqn.envs.spaces import EnvSpaces


class EnvStep(NamedTuple):
    """One vector step of N envs; tensors on the env's device.

    next_obs: (N, *obs_shape) what each env shows now, a reset observation where an episode ended.
    reward: (N,) float32.
    terminated, truncated: (N,) bool, as the env reports them (both may be True at once).
    final_obs: (N, *obs_shape) the observation each transition ended in; equal to `next_obs` except
        where an episode ended (the same tensor when no env of this kind resets in the step).
    valid: (N,) bool on the host, False for rows that are no transition (Gymnasium's NEXT_STEP reset
        step); None when every row is one, as always for same-step envs.
    """

    next_obs: Tensor
    reward: Tensor
    terminated: Tensor
    truncated: Tensor
    final_obs: Tensor
    valid: np.ndarray | None = None

    def transitions(self, obs: Tensor, actions: Tensor, env_ids: Tensor | None = None) -> dict[str, Tensor]:
        """The rows of this step for `ReplayBuffer.extend`, no-transition rows left out.

        Args:
            obs: (N, *obs_shape) the observations `actions` (N,) were chosen on.
            env_ids: (N,) int64 naming each row's env, which frame storage needs to link an env's rows.
        """
        rows = {"obs": obs, "action": actions, "reward": self.reward, "next_obs": self.final_obs, "terminated": self.terminated}
        if env_ids is not None:
            rows["env"] = env_ids
        if self.valid is None:
            return rows
        keep = torch.from_numpy(np.flatnonzero(self.valid)).to(obs.device, non_blocking=True)  # the host knows which rows
        return {name: value.index_select(0, keep) for name, value in rows.items()}


class DeviceVectorEnv(Protocol):
    """N envs stepped together on `device`; see the module docstring for the autoreset contract."""

    num_envs: int
    device: torch.device
    spaces: EnvSpaces
    max_episode_steps: int | None
    """The time limit, where the env has one."""
    max_step_reward: float | None
    """The most one step can pay, where it is known: with the time limit it bounds what an
    unfinished episode can still earn, so an evaluation that can no longer pass stops early."""

    def reset(self, seed: int) -> Tensor:
        """Start every env afresh from `seed`; returns obs (N, *obs_shape) on `device`."""
        ...

    def step(self, actions: Tensor) -> EnvStep:
        """Advance every env by one step; `actions` (N,) int64 on any device."""
        ...

    def state_dict(self) -> dict[str, Any] | None:
        """The whole env state as tensors and plain data, or None where it cannot be read."""
        ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...

    def close(self) -> None: ...
