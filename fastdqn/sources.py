"""Row sources: what feeds the engine's replay, act -> env step -> replay write, once per vector step.

- `LocalSource`: a single run's collector (collect.py), the general path or the fused device step;
- `MemberSource`: K members' envs as one K x N env (member_envs.py), their stacked act, n-step
  windows over all K x N envs, and the member-tagged replay write.
Both return the step's `EnvStep` (K x N rows, member k's at k*N..(k+1)*N-1) for episode bookkeeping.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from fastdqn.buffer import ReplayBuffer
from fastdqn.collect import Collector
from fastdqn.config import Config
from fastdqn.episodes import EpisodeTracker
from fastdqn.member_envs import MemberEnvs
from fastdqn.members import MemberAgents
from fastdqn.nstep import MemberNStep
from fastdqn.run_state import LoopState
from fastdqn.schedules import epsilon_at


class LocalRows:
    """What local sources share: epsilon per member from its schedule, one update round every `train_every` vector steps."""

    train_every = 1

    def epsilons(self, cfgs: Sequence[Config], env_steps: int) -> list[float]:
        return [epsilon_at(cfg, env_steps) for cfg in cfgs]

    def rounds_due(self, state: LoopState, taken: int) -> int:
        return int(state.vector_steps % self.train_every == 0)

    def after_learning(self, rounds: int, state: LoopState) -> None:
        """Local envs act on the learner's live weights: nothing to send."""

    def settle(self) -> None:
        """Nothing is on its way."""

    def logged(self, state: LoopState) -> None:
        """metrics.csv and episodes.csv say it all."""


class LocalSource(LocalRows):
    """A single run's collector as a row source (K = 1); `tracker` gets its episodes."""

    def __init__(self, collector: Collector, tracker: EpisodeTracker, train_every: int):
        self.collector, self.tracker, self.train_every = collector, tracker, train_every
        self.num_envs = collector.envs.num_envs

    def step(self, epsilons: Sequence[float], env_steps: int) -> int:
        self.tracker.record(self.collector.step(epsilons[0]), env_steps + self.num_envs)
        return self.num_envs

    def keep(self, slots: Sequence[int]) -> None:
        """A single run never shrinks."""

    def state_dict(self) -> dict[str, Any]:
        """`env`: the env's state (None where a Gymnasium env's cannot be read), `nstep`: its windows, `position`: the obs acted on next."""
        nstep = self.collector.nstep
        return {
            "env": self.collector.envs.state_dict(),
            "nstep": None if nstep is None else nstep.state_dict(),
            "position": self.collector.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any], seeds: Sequence[int], windows: bool) -> bool:
        """Put the envs back where they were (False: they start fresh episodes from `seeds`); `windows`: the n-step windows too."""
        if windows and self.collector.nstep is not None:  # pending rows only make sense with the rows before them
            self.collector.nstep.load_state_dict(state["nstep"])
        if state["env"] is None:
            self.collector.reset(seeds[0])
            return False
        self.collector.envs.load_state_dict(state["env"])
        self.collector.load_state_dict(state["position"])
        return True

    def close(self) -> None:
        self.collector.envs.close()


class MemberSource(LocalRows):
    """K members' envs, acting, n-step windows and replay write; `obs` (K*N, *obs_shape) is what the next step acts on.

    `trackers`: each member's episode tracker, in the order of the stacks (shrunk with them by `keep`).
    """

    def __init__(
        self,
        learner: MemberAgents,
        envs: MemberEnvs,
        replay: ReplayBuffer,
        nstep: MemberNStep | None,
        trackers: Sequence[EpisodeTracker],
        train_every: int,
    ):
        self.learner, self.envs, self.replay, self.nstep = learner, envs, replay, nstep
        self.trackers, self.train_every = list(trackers), train_every
        self.n = envs.n
        self.obs_shape = envs.spaces.obs_shape
        self.obs = torch.zeros(0)
        self.env_ids = torch.arange(envs.num_envs, device=envs.device)  # lets FrameStorage link each env's rows (member k's: k*N..)

    def reset(self, seeds: Sequence[int]) -> None:
        self.obs = self.envs.reset(seeds)

    def step(self, epsilons: Sequence[float], env_steps: int) -> int:
        k, obs = self.envs.k, self.obs
        actions = self.learner.act(obs.view(k, self.n, *self.obs_shape), epsilons).view(-1)  # (K*N,)
        step = self.envs.step(actions)
        if self.nstep is None:
            rows = step.transitions(obs, actions, self.env_ids)
            row_members = None if step.valid is None else np.flatnonzero(step.valid) // self.n
        else:
            rows = self.nstep.push_step(obs, actions, step)
            row_members = self.nstep.row_members
        self.replay.extend(rows, row_members)
        self.obs = step.next_obs
        for slot, tracker in enumerate(self.trackers):
            tracker.record(self.envs.member_step(step, slot), env_steps + self.n)
        return self.n

    def keep(self, slots: Sequence[int]) -> None:
        """Go on with the members at `slots` only, each env where it is."""
        self.obs = self.obs.view(self.envs.k, self.n, *self.obs_shape)[list(slots)].flatten(0, 1)
        self.envs.keep(slots)
        self.env_ids = self.env_ids[: self.envs.num_envs]  # the replay moved each kept member's envs to its new slot
        self.trackers = [self.trackers[i] for i in slots]
        if self.nstep is not None:
            self.nstep.keep(slots)

    def state_dict(self) -> dict[str, Any]:
        """As `LocalSource.state_dict`, for every member still training."""
        nstep = None if self.nstep is None else self.nstep.state_dict()
        return {"env": self.envs.state_dict(), "nstep": nstep, "position": {"obs": self.obs.cpu().clone()}}

    def load_state_dict(self, state: dict[str, Any], seeds: Sequence[int], windows: bool) -> bool:
        if windows and self.nstep is not None:
            self.nstep.load_state_dict(state["nstep"])
        if state["env"] is None:
            self.reset(seeds)
            return False
        self.envs.load_state_dict(state["env"])
        self.obs = state["position"]["obs"].to(self.envs.device)
        return True

    def close(self) -> None:
        self.envs.close()
