"""Ape-X actors (Horgan et al. 2018, arXiv:1803.00933): a CPU policy copy and a Gymnasium vector env that ship rows.

`RolloutWorker` is plain Python, so it is tested without Ray; `distributed.py` runs one per Ray actor
process. Each `collect` call acts epsilon-greedily for `chunk_steps` env steps and returns the rows
to store as numpy arrays (they travel through Ray's object store without a copy into the learner's
heap): Gymnasium's NEXT_STEP reset steps are already dropped (`EnvStep.transitions`), n-step windows
are folded here (`NStepWriter` on the actor's CPU), and with prioritized replay every row carries its
initial priority, the |TD error| under the actor's copy of the online and target networks, as Ape-X
does (new rows at the largest priority so far would drown the learner in fresh rows).

The learner sends weights as one flat array per network (`FlatParameters.data`), so a broadcast is
two contiguous copies, whatever the network.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np
import torch

from fastdqn.agent import DQNAgent
from fastdqn.config import Config
from fastdqn.envs import make_envs
from fastdqn.episodes import EpisodeTracker
from fastdqn.nstep import NStepWriter

Weights = tuple[np.ndarray, np.ndarray]
"""(online, target) flat float32 parameters, as `DQNAgent.online.data` / `target.data` hold them."""


def ape_x_epsilons(actors: int, base: float = 0.4, alpha: float = 7.0) -> list[float]:
    """Ape-X's fixed exploration per actor: `base ** (1 + alpha * i / (N - 1))` for actor i of N (N >= 2)."""
    if actors < 2:
        raise ValueError(f"ape_x_epsilons needs at least 2 actors, got {actors}; one actor follows the run's schedule")
    return [base ** (1 + alpha * i / (actors - 1)) for i in range(actors)]


class _Episodes:
    """An `EpisodeSink` that keeps finished episodes until the chunk is sent."""

    def __init__(self) -> None:
        self.returns: list[float] = []
        self.lengths: list[int] = []

    def add_episodes(self, env_steps: int, returns: np.ndarray, lengths: np.ndarray) -> None:
        self.returns.extend(returns.tolist())
        self.lengths.extend(lengths.tolist())


class RolloutWorker:
    """One actor: `cfg.num_envs` Gymnasium envs on the CPU and a CPU copy of the Q-networks.

    Args:
        cfg: the run's config (env, network, n-step, PER, chunk size); its device is ignored.
        index: the actor's number, 0..N-1; it seeds the actor's exploration apart from the others'.
    """

    def __init__(self, cfg: Config, index: int):
        torch.set_num_threads(max(cfg.torch_threads, 1))
        self.cfg = cfg.replace(device="cpu", compile="off", fuse_step="off", seed=cfg.seed + 1_000 * (index + 1))
        self.index = index
        self.envs = make_envs(cfg.env_id, cfg.num_envs, "gymnasium", "cpu", cfg.vectorization_mode)
        self.agent = DQNAgent(self.cfg, self.envs.spaces, "cpu")
        spaces = self.envs.spaces
        self.nstep = NStepWriter(cfg.n_step, cfg.gamma, cfg.num_envs, spaces.obs_shape, spaces.obs_dtype, "cpu") if cfg.n_step > 1 else None
        self.episodes = _Episodes()
        self.tracker = EpisodeTracker(cfg.num_envs, torch.device("cpu"), log_steps=1, sink=self.episodes)
        self.obs: torch.Tensor | None = None
        self.env_steps = 0
        self.broken = False
        """The envs raised during a chunk; the next request must carry a reset seed."""
        self.instance = f"{os.getpid()}-{time.time_ns()}"
        """Names this process: a chunk from a new one tells the learner Ray restarted the actor between requests."""
        self.weights_version = -1
        """The learner's broadcast these weights came from; -1 until the first one arrives."""

    def collect(self, weights: Weights | None, version: int, seed: int | None, epsilon: float) -> dict[str, Any]:
        """Act for `cfg.chunk_steps` env steps (whole vector steps) and return what the learner stores.

        Args:
            weights: new (online, target) parameters, or None to keep the current ones.
            version: the broadcast `weights` belong to (reported back, so staleness can be measured).
            seed: reset every env from this seed first (a new or restarted actor); None continues.
            epsilon: this chunk's exploration probability.
        Returns:
            `rows`: `obs`, `action`, `reward`, `next_obs`, `terminated` (and `discount` for n-step
            rows) as numpy arrays of M rows; `priorities` (M,) float32 |TD errors| with PER, else
            None; `episode_returns`, `episode_lengths` of the episodes that ended; `env_steps` taken
            (reset steps included, as the single-process loop counts them); `seconds` spent; `actor`;
            `weights_version`; `instance` (this process).
        """
        start = time.perf_counter()
        if weights is not None:
            self.agent.online.data.copy_(torch.from_numpy(np.array(weights[0], dtype=np.float32)))  # object-store arrays are read-only
            self.agent.target.data.copy_(torch.from_numpy(np.array(weights[1], dtype=np.float32)))
            self.weights_version = version
        if self.broken and seed is None:
            raise RuntimeError(f"actor {self.index}: its envs raised in an earlier chunk; it waits for the learner's reset")
        if self.broken:  # a vector env that raised mid-step may be half-stepped: build it anew
            self.envs.close()
            self.envs = make_envs(self.cfg.env_id, self.cfg.num_envs, "gymnasium", "cpu", self.cfg.vectorization_mode)
            self.broken = False
        if seed is not None or self.obs is None:
            self.obs = self.envs.reset(seed=self.cfg.seed if seed is None else seed)
            self.tracker.returns.zero_()
            self.tracker.lengths.zero_()
            if self.nstep is not None:
                spaces = self.envs.spaces
                self.nstep = NStepWriter(self.cfg.n_step, self.cfg.gamma, self.cfg.num_envs, spaces.obs_shape, spaces.obs_dtype, "cpu")
        vector_steps = -(-self.cfg.chunk_steps // self.cfg.num_envs)
        parts: list[dict[str, torch.Tensor]] = []
        obs = self.obs
        try:
            for _ in range(vector_steps):
                actions = self.agent.act(obs, epsilon)
                step = self.envs.step(actions)
                parts.append(step.transitions(obs, actions) if self.nstep is None else self.nstep.push_step(obs, actions, step))
                self.env_steps += self.cfg.num_envs
                self.tracker.record(step, self.env_steps)
                obs = step.next_obs
        except Exception:
            self.broken, self.obs = True, None  # the learner counts the chunk lost and sends a reset seed next
            raise
        self.obs = obs
        rows = {name: torch.cat([part[name] for part in parts]) for name in parts[0]}
        priorities = self.priorities(rows) if self.cfg.per else None
        returns, lengths = self.episodes.returns, self.episodes.lengths
        self.episodes.returns, self.episodes.lengths = [], []
        return {
            "rows": {name: value.numpy() for name, value in rows.items()},
            "priorities": priorities,
            "episode_returns": np.asarray(returns, dtype=np.float64),
            "episode_lengths": np.asarray(lengths, dtype=np.int64),
            "env_steps": vector_steps * self.cfg.num_envs,
            "seconds": time.perf_counter() - start,
            "actor": self.index,
            "weights_version": self.weights_version,
            "instance": self.instance,
        }

    @torch.no_grad()
    def priorities(self, rows: dict[str, torch.Tensor]) -> np.ndarray:
        """|TD error| (M,) float32 of each row under the actor's networks: Ape-X's initial priorities."""
        td_target = self.agent.td_target(rows["reward"], rows["next_obs"], rows["terminated"], rows.get("discount"))  # (M,)
        q = self.agent.q_values(rows["obs"]).gather(1, rows["action"].unsqueeze(1)).squeeze(1)  # (M,)
        return (td_target - q).abs().numpy()

    def ping(self) -> str:
        """This process's `instance`, once its envs and networks are built (the learner asks a restarted actor until it answers)."""
        return self.instance

    def close(self) -> None:
        self.envs.close()
