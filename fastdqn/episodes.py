"""Per-env episode returns and lengths, kept where the env's rows are, read back at log intervals.

On CPU a step's episode ends go straight to `Metrics` (host views of CPU tensors cost nothing). On
CUDA each step writes its (return so far, length, done) row into a (T, N) log on the device and
`flush` reads the whole log back once, when a metric row is due: no sync between log intervals.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import torch

from fastdqn.envs.base import EnvStep


class EpisodeSink(Protocol):
    def add_episodes(self, env_steps: int, returns: np.ndarray, lengths: np.ndarray) -> None: ...


class EpisodeTracker:
    """Running return and length of each of `num_envs` envs.

    Args:
        log_steps: vector steps the device log holds between flushes (a full log flushes itself).
    """

    def __init__(self, num_envs: int, device: torch.device, log_steps: int, sink: EpisodeSink | None = None):
        self.num_envs = num_envs
        self.device = device
        self.sink = sink
        """Where finished episodes go (`Metrics`); set before the first `record`."""
        self.on_host = device.type == "cpu"
        self.returns = torch.zeros(num_envs, dtype=torch.float64, device=device)
        self.lengths = torch.zeros(num_envs, dtype=torch.int64, device=device)
        self.log_steps = max(log_steps, 1)
        self.logged = 0
        """Vector steps in the device log since the last flush."""
        self.log_start = 0
        """Env steps at the last flush: row r of the log ended at `log_start + (r + 1) * num_envs`."""
        if not self.on_host:
            self.log_return = torch.zeros((self.log_steps, num_envs), dtype=torch.float64, device=device)
            self.log_length = torch.zeros((self.log_steps, num_envs), dtype=torch.int64, device=device)
            self.log_done = torch.zeros((self.log_steps, num_envs), dtype=torch.bool, device=device)

    def record(self, step: EnvStep, env_steps: int) -> None:
        """Add one vector step; `env_steps` counts the steps up to and including it."""
        if self.on_host:
            returns, lengths = self.returns.numpy(), self.lengths.numpy()
            returns += step.reward.numpy()
            lengths += 1 if step.valid is None else step.valid  # Gymnasium's reset step starts no episode step
            done = step.terminated.numpy() | step.truncated.numpy()
            if done.any():
                assert self.sink is not None
                self.sink.add_episodes(env_steps, returns[done], lengths[done])
                returns[done] = 0.0
                lengths[done] = 0
            return
        self.returns.add_(step.reward)
        self.lengths.add_(1 if step.valid is None else torch.from_numpy(step.valid).to(self.device, non_blocking=True))
        done = step.terminated | step.truncated
        self.log_return[self.logged] = self.returns
        self.log_length[self.logged] = self.lengths
        self.log_done[self.logged] = done
        self.returns.masked_fill_(done, 0.0)
        self.lengths.masked_fill_(done, 0)
        self.logged += 1
        if self.logged == self.log_steps:
            self.flush(env_steps)

    def flush(self, env_steps: int) -> None:
        """Hand every episode that ended since the last flush to the sink (one device read on CUDA)."""
        if not self.on_host and self.logged:
            n = self.logged
            done = self.log_done[:n].cpu().numpy()  # the sync point: once per log interval
            if done.any():
                assert self.sink is not None
                returns, lengths = self.log_return[:n].cpu().numpy(), self.log_length[:n].cpu().numpy()
                for row in np.flatnonzero(done.any(axis=1)):
                    self.sink.add_episodes(
                        self.log_start + (int(row) + 1) * self.num_envs, returns[row][done[row]], lengths[row][done[row]]
                    )
        self.logged = 0
        self.log_start = env_steps

    def state_dict(self) -> dict[str, Any]:
        return {"returns": self.returns.cpu().clone(), "lengths": self.lengths.cpu().clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.returns.copy_(state["returns"])
        self.lengths.copy_(state["lengths"])
