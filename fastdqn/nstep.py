"""n-step returns, folded in as transitions are written: a window of the last N vector steps per env.

A row leaves the window once it has summed N rewards, `r_t + γ r_{t+1} + … + γ^{N-1} r_{t+N-1}`, and
bootstraps from `s_{t+N}` with `discount = γ^N`. When an episode ends inside the window every pending
row of that env leaves at once with the k < N steps it has: a terminal sets `discount = 0`, a
truncation keeps `γ^k` and bootstraps from the state where the episode was cut (NEXT_STEP autoreset
reports the true final observation there). The autoreset step itself never enters a window, so a
row never spans two episodes, and each env has its own column, so it never spans two envs.

Why at write time rather than at sample time (gathering N consecutive rows per sampled index):
- the work is done once per transition, not once per sampled transition: with the default replay
  ratio (4 updates of 64 rows per 16-env step) a row is sampled 16 times over, and each sample-time
  gather also needs validity checks (same env, same episode, not yet overwritten, already complete);
- every quantity that decides which rows leave the window (the done flags, the autoreset mask, the
  step count) is already on the host, so the number of rows to write is known without a device
  sync, and `RingWriter` keeps its host cursor;
- the ring keeps its layout (one row per transition, envs interleaved in any order), so uniform and
  prioritized samplers and `ReplayBuffer.sample_tensors` are unchanged; sample time would need a
  time-major (steps, envs) storage.
`bench/bench_nstep.py` times one vector step of replay work (16 envs, N = 3, then 4 samples of 64)
on cpu, torch 2.13, 1 thread: 0.36 ms at write time, 1.10 ms at sample time, against 0.23 ms for
plain one-step replay (best of two runs on a busy shared 2-core machine; the ratios held in each).

Checkpoints hold the window (`state_dict`), so a resumed n-step run writes the rows that were still
pending and stays bit-exact with an uninterrupted one.

The window lives on the buffer's device: `obs` (N, E, *obs_shape), `action` (N, E), running `returns`
(N, E); slot `step % N` is the newest. Which slots are pending is a host (N, E) bool array.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from fastdqn.envs.base import EnvStep


class NStepWriter:
    """Turns each env's one-step transitions into n-step rows for `ReplayBuffer.extend`.

    Args:
        n_step: rewards summed per row (N >= 1).
        gamma: discount per env step.
        num_envs: envs in the vector env (E).
        obs_shape, obs_dtype: one observation's shape and dtype.
        device: the buffer's device.
    """

    def __init__(
        self, n_step: int, gamma: float, num_envs: int, obs_shape: tuple[int, ...], obs_dtype: torch.dtype, device: torch.device | str
    ):
        if n_step < 1:
            raise ValueError(f"n_step={n_step} must be at least 1")
        self.n_step, self.gamma, self.num_envs = n_step, gamma, num_envs
        self.device = torch.device(device)
        self.obs = torch.zeros((n_step, num_envs, *obs_shape), dtype=obs_dtype, device=self.device)
        self.action = torch.zeros((n_step, num_envs), dtype=torch.int64, device=self.device)
        self.returns = torch.zeros((n_step, num_envs), dtype=torch.float32, device=self.device)
        self.pending = np.zeros((n_step, num_envs), dtype=bool)
        self.steps = 0
        """Vector steps pushed so far; the newest slot is `(steps - 1) % n_step`."""
        slots = np.arange(n_step)
        self.ages = (slots[:, None] - slots[None, :]) % n_step  # ages[s, i]: steps slot i has seen before slot s is written
        # reward_weights[s, i]: weight of the reward arriving with slot s in the return of the row in slot i
        self.reward_weights = torch.tensor(float(gamma) ** self.ages, dtype=torch.float32, device=self.device)  # (N, N)
        self.gamma_powers = (float(gamma) ** np.arange(n_step + 1)).astype(np.float32)  # host: discounts are built there

    def push(self, rows: Mapping[str, Tensor], reset_step: np.ndarray, terminated: np.ndarray, truncated: np.ndarray) -> dict[str, Tensor]:
        """Add one vector step and return the n-step rows it completes, oldest first.

        Args:
            rows: this step of every env: `obs` (E, *obs_shape), `action` (E,), `reward` (E,),
                `next_obs` (E, *obs_shape), `terminated` (E,) bool; any device.
            reset_step: (E,) bool, host: env i's step is the NEXT_STEP autoreset step (its previous
                step ended an episode), which is no transition.
            terminated, truncated: (E,) bool, host, as the env returned them.
        Returns:
            M rows on the device, 0 <= M <= N * E: `obs`, `action`, `reward` (the discounted sum),
            `next_obs` (the state to bootstrap from), `terminated`, `discount` (γ^k, 0 after a terminal).
        """
        n = self.n_step
        slot = self.steps % n
        self.steps += 1
        self.obs[slot] = rows["obs"]
        self.action[slot] = rows["action"]
        self.returns[slot] = 0.0
        reward = rows["reward"].to(self.device, torch.float32, non_blocking=True)  # (E,)
        self.returns.addcmul_(self.reward_weights[slot].unsqueeze(1), reward.unsqueeze(0))  # (N, E); stale slots are zeroed on reuse
        self.pending[slot] = ~reset_step

        # Host bookkeeping: which rows leave now, and with how many steps. No device sync.
        age = self.ages[slot]  # (N,)
        emit = self.pending & ((terminated | truncated)[None, :] | (age == n - 1)[:, None])  # (N, E)
        self.pending &= ~emit
        oldest_first = (slot + 1 + np.arange(n)) % n
        order, env = np.nonzero(emit[oldest_first])
        where = oldest_first[order]
        discount = self.gamma_powers[age[where] + 1] * ~terminated[env]  # (M,) float32; a terminal cuts the bootstrap
        # from pageable host memory a non_blocking copy is staged before it returns: no stream sync
        index = torch.from_numpy(np.stack([where * self.num_envs + env, env])).to(self.device, non_blocking=True)  # (2, M)
        window_rows, env_rows = index[0], index[1]
        return {
            "obs": self.obs.flatten(0, 1).index_select(0, window_rows),
            "action": self.action.view(-1).index_select(0, window_rows),
            "reward": self.returns.view(-1).index_select(0, window_rows),
            "next_obs": rows["next_obs"].to(self.device, non_blocking=True).index_select(0, env_rows),
            "terminated": rows["terminated"].to(self.device, torch.bool, non_blocking=True).index_select(0, env_rows),
            "discount": torch.from_numpy(discount).to(self.device, non_blocking=True),
        }

    def push_step(self, obs: Tensor, actions: Tensor, step: EnvStep) -> dict[str, Tensor]:
        """`push` for one `EnvStep` taken from `obs` (E, *obs_shape) with `actions` (E,).

        The window's bookkeeping runs on the host, so on CUDA this reads the step's done flags back
        (one sync per vector step; one-step replay has none).
        """
        rows = {"obs": obs, "action": actions, "reward": step.reward, "next_obs": step.final_obs, "terminated": step.terminated}
        reset_step = np.zeros(self.num_envs, dtype=bool) if step.valid is None else ~step.valid
        terminated, truncated = torch.stack((step.terminated, step.truncated)).cpu().numpy()  # the one read back
        return self.push(rows, reset_step, terminated, truncated)

    def state_dict(self) -> dict[str, Any]:
        return {
            "obs": self.obs.clone(),
            "action": self.action.clone(),
            "returns": self.returns.clone(),
            "pending": torch.from_numpy(self.pending.copy()),
            "steps": self.steps,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if tuple(state["obs"].shape) != tuple(self.obs.shape):
            raise ValueError(f"saved n-step window is {tuple(state['obs'].shape)}, this one {tuple(self.obs.shape)}")
        self.obs.copy_(state["obs"])
        self.action.copy_(state["action"])
        self.returns.copy_(state["returns"])
        self.pending = state["pending"].numpy().copy()
        self.steps = int(state["steps"])


class MemberNStep(NStepWriter):
    """One n-step window over all K x N envs (envs are independent, so each keeps a single run's
    window); `row_members` says whose each returned row is, in the order `push` returns them."""

    def __init__(
        self,
        n_step: int,
        gamma: float,
        num_envs: int,
        envs_per_member: int,
        obs_shape: tuple[int, ...],
        obs_dtype: torch.dtype,
        device: torch.device,
    ):
        super().__init__(n_step, gamma, num_envs, obs_shape, obs_dtype, device)
        self.envs_per_member = envs_per_member
        self.row_members = np.zeros(0, dtype=np.int64)

    def push(self, rows: Mapping[str, Tensor], reset_step: np.ndarray, terminated: np.ndarray, truncated: np.ndarray) -> dict[str, Tensor]:
        slot = self.steps % self.n_step
        waiting = self.pending.copy()
        waiting[slot] = ~reset_step
        out = super().push(rows, reset_step, terminated, truncated)
        emitted = waiting & ~self.pending  # (n, E): the rows push let go, found as it finds them
        oldest_first = (slot + 1 + np.arange(self.n_step)) % self.n_step
        _, env = np.nonzero(emitted[oldest_first])
        self.row_members = env // self.envs_per_member
        return out

    def keep(self, slots: Sequence[int]) -> None:
        """Go on with the envs of the members at `slots` only."""
        n = self.envs_per_member
        envs = np.concatenate([np.arange(i * n, (i + 1) * n) for i in slots])
        index = torch.from_numpy(envs).to(self.device)
        self.obs = self.obs.index_select(1, index)
        self.action = self.action.index_select(1, index)
        self.returns = self.returns.index_select(1, index)
        self.pending = self.pending[:, envs]
        self.num_envs = envs.size

    def member_state(self, k: int) -> dict[str, Any]:
        """Member k's window as a single run's `NStepWriter.state_dict()`."""
        envs = slice(k * self.envs_per_member, (k + 1) * self.envs_per_member)
        return {
            "obs": self.obs[:, envs].clone(),
            "action": self.action[:, envs].clone(),
            "returns": self.returns[:, envs].clone(),
            "pending": torch.from_numpy(self.pending[:, envs].copy()),
            "steps": self.steps,
        }

    def load_member_state(self, k: int, state: Mapping[str, Any]) -> None:
        envs = slice(k * self.envs_per_member, (k + 1) * self.envs_per_member)
        self.obs[:, envs] = state["obs"]
        self.action[:, envs] = state["action"]
        self.returns[:, envs] = state["returns"]
        self.pending[:, envs] = state["pending"].numpy()
        self.steps = int(state["steps"])
