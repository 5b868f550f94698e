"""The one training loop: K >= 1 members fed by a row source, and the per-member cadence, once.

Every run is K members trained as one; a single run is K = 1. `run` reads top to bottom: act ->
env step -> replay write (the row source), the update (the learner), then, for each member, the
cadence: one finite check, evaluate, record the best, freeze when solved or at its total_steps,
log, checkpoint. What differs between a single run, a group and Ray actors sits behind small objects
with one interface each, built by the entries (`train.train` for K = 1, `group.train_many` for
K >= 1, `actor_source.train_distributed` for K = 1 fed by Ray actors):

- learner (`Learner`): `SingleLearner` (learners.py) over one `DQNAgent`, so a single run keeps its
  mm kernels, `--compile` and the fused collector bit for bit; `MemberAgents` (members.py), the
  stacked update of K members;
- row source (`RowSource`): `LocalSource` (the collector, fused or not) or `MemberSource`
  (K x N envs, n-step windows tagged by member), both in sources.py, or `ActorSource`
  (actor_source.py: Ray chunks, the replay ratio as `rounds_owed`, the weight broadcast);
- evaluator (`MemberEvaluator`, or `SingleEvaluator` over a run's `Evaluator`);
- `save`: the checkpoint of the run or the group folder at this step, from the parts.

A single run (`Parts.single`) stops as a whole when its weights turn non-finite (`TrainingFailed`)
and checkpoints its last step, so `--resume` with a larger `--total-steps` extends it; a group
member that fails stops alone and the others go on.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor

from fastdqn.agent import DQNAgent
from fastdqn.buffer import ReplayBuffer
from fastdqn.config import Config, FastDQNError
from fastdqn.episodes import EpisodeTracker
from fastdqn.evaluate import Evaluation
from fastdqn.finite import UPDATE_FIX, NonFiniteEnvOutput
from fastdqn.metrics import Metrics
from fastdqn.per import PrioritizedSampler
from fastdqn.resume import checkpoint_payload, save_checkpoint
from fastdqn.run_state import LoopState, RunResult, record_eval
from fastdqn.schedules import learning_rate_at, linear_schedule
from fastdqn.signals import StopRequest, stop_on_signals

Stats = dict[str, Tensor]


class TrainingFailed(FastDQNError):
    """Training cannot go on (non-finite loss, an env that raised); earlier checkpoints are kept."""

    exit_code = 1


class TrainingInterrupted(FastDQNError):
    """SIGINT or SIGTERM arrived: a checkpoint was written at the current step."""

    def __init__(self, message: str, checkpoint: Path, exit_code: int):
        super().__init__(message)
        self.checkpoint = checkpoint
        self.exit_code = exit_code


class Learner(Protocol):
    """K members' networks and optimizer; slot s is the s-th member still training."""

    @property
    def updates(self) -> np.ndarray:
        """(K,) int64 gradient steps per member, on the host."""
        ...

    def sample(self, replay: ReplayBuffer, batch_size: int, active: np.ndarray) -> Any: ...

    def update(self, batch: Any, active: np.ndarray) -> Stats:
        """One gradient step of every `active` (K,) member; device tensors, never read back."""
        ...

    def set_learning_rates(self, rates: Sequence[float]) -> None:
        """Adam's step size of the member at each slot, from now on."""
        ...

    def reprioritize(self, replay: ReplayBuffer, batch: Any, stats: Stats, active: np.ndarray) -> None: ...

    def finite(self, stats: Stats | None) -> np.ndarray:
        """(K,) bool: member k's weights and last loss are finite (one host sync)."""
        ...

    def member_stats(self, stats: Stats | None, slot: int) -> Stats | None: ...

    def export(self, slot: int) -> DQNAgent:
        """The member at `slot` as a `DQNAgent`, to save or evaluate."""
        ...

    def keep(self, slots: Sequence[int]) -> None: ...

    def state_dict(self) -> dict[str, Any]: ...


class RowSource(Protocol):
    """Where rows come from: act -> env step -> replay write for every member, and the episodes that ended."""

    def epsilons(self, cfgs: Sequence[Config], env_steps: int) -> list[float]:
        """Each member's exploration rate at `env_steps` (logged with its rows)."""
        ...

    def step(self, epsilons: Sequence[float], env_steps: int) -> int:
        """Collect and store one batch of rows; returns the env steps they took (0: none arrived yet)."""
        ...

    def rounds_due(self, state: LoopState, taken: int) -> int:
        """Update rounds (of `gradient_steps` each) owed for the rows just stored: the replay ratio."""
        ...

    def after_learning(self, rounds: int, state: LoopState) -> None:
        """`rounds` were paid (0 when the members could not learn yet)."""
        ...

    def settle(self) -> None: ...

    def logged(self, state: LoopState) -> None:
        """A log row was written: the source adds its own (Ray's `actors.csv`)."""
        ...

    def keep(self, slots: Sequence[int]) -> None: ...

    def state_dict(self) -> dict[str, Any]:
        """`env`, `nstep` and `position` (where the next step starts), and any `loop` counters of its own."""
        ...

    def close(self) -> None: ...


class MembersEvaluator(Protocol):
    def run(self, members: Any) -> Sequence[Evaluation]: ...

    def keep(self, slots: Sequence[int]) -> None: ...

    def close(self) -> None: ...


@dataclass
class Member:
    """One member's own bookkeeping: its config, result, metric files, episode tracker and how it ended."""

    cfg: Config
    result: RunResult
    metrics: Metrics
    tracker: EpisodeTracker | None
    """None where the source hands finished episodes to `metrics` itself (Ray actors)."""
    status: str = "running"


@dataclass
class Parts:
    learner: Learner
    source: RowSource
    replay: ReplayBuffer
    evaluator: MembersEvaluator | None
    members: list[Member]
    folder: Path
    """The folder `--resume` continues: the run folder, or the group folder."""
    single: bool
    """A single run: a non-finite member stops the run (TrainingFailed), and its last step is checkpointed."""
    display: Any = None
    """A group's progress line (`GroupProgress`), updated at each log row."""


def run(parts: Parts, state: LoopState, start_time: float, interrupt_at_step: int | None = None) -> None:
    """Train every member still running from `state` until each has stopped; see the module docstring."""
    learner, source, replay, members = parts.learner, parts.source, parts.replay, parts.members
    cfg = members[0].cfg
    live = [i for i, m in enumerate(members) if m.status == "running"]
    learning_starts = np.array([m.cfg.learning_starts for m in members])
    total_steps = np.array([m.cfg.total_steps for m in members])
    ready: np.ndarray | None = None  # once every member learns it stays so (rows only grow): no more checks
    first_stop = int(total_steps[live].min()) if live else 0
    stats: Stats | None = None
    last_good = state.env_steps
    try:
        with stop_on_signals() as stop:
            while live:
                epsilons = source.epsilons([members[i].cfg for i in live], state.env_steps)
                taken = _collect(source, epsilons, state.env_steps)  # act -> env step -> replay write -> episodes
                if taken:  # Ray actors may have had no chunk ready yet: then only a signal is news
                    state.env_steps += taken
                    state.vector_steps += 1
                rounds = source.rounds_due(state, taken)
                if rounds:
                    active = ready if ready is not None else (state.env_steps >= learning_starts[live]) & (replay.sizes >= cfg.batch_size)
                    ready = active if active.all() else None
                    rounds = rounds if active.any() else 0
                    for _ in range(rounds):
                        stats = learn([members[i].cfg for i in live], learner, replay, active, state.env_steps)
                source.after_learning(rounds, state)

                eval_due = parts.evaluator is not None and state.env_steps >= state.next_eval
                log_now = state.env_steps >= state.next_log
                checkpoint_due = state.env_steps >= state.next_checkpoint
                interrupted = stop.requested or (interrupt_at_step is not None and state.env_steps >= interrupt_at_step)
                if not (eval_due or log_now or checkpoint_due or interrupted or state.env_steps >= first_stop):
                    continue
                # the cadence: one finite check first, so a diverged member is never evaluated, logged or saved
                finite = learner.finite(stats)  # (K,) bool: the one host sync
                if parts.single:
                    last_good = require_finite(finite, last_good, state.env_steps)
                evaluations: list[Evaluation | None] = [None] * len(live)
                if parts.evaluator is not None and eval_due:
                    state.next_eval = next_multiple(state.env_steps, cfg.eval_every_steps)
                    evaluations = [e if finite[slot] else None for slot, e in enumerate(parts.evaluator.run(learner))]
                stopping = state.env_steps >= total_steps[live]
                for slot, i in enumerate(live):
                    evaluation, member = evaluations[slot], members[i]
                    if evaluation is not None and record_eval(member.result, member.cfg, evaluation, state.env_steps, start_time):
                        learner.export(slot).save(member.result.run_dir / "best.pt")
                    stopping[slot] |= member.result.solved_at_step is not None
                if stopping.all():
                    source.settle()  # what is still on its way counts (Ray requests that failed as the last chunks came in)
                if log_now or eval_due or stopping.any():
                    state.next_log = next_multiple(state.env_steps, cfg.log_every_steps) if log_now else state.next_log
                    for slot, i in enumerate(live):
                        if finite[slot]:
                            _flush(members[i], state.env_steps)
                            updates, member_stats = int(learner.updates[slot]), learner.member_stats(stats, slot)
                            members[i].metrics.log(state.env_steps, updates, epsilons[slot], member_stats, evaluations[slot])
                    source.logged(state)
                    if parts.display is not None:
                        parts.display.update(state.env_steps, [m.result for m in members], [m.metrics for m in members])
                ending = stopping | ~finite
                for slot in map(int, np.flatnonzero(ending)):  # frozen: final.pt and counters; a failed member keeps its best.pt only
                    _stop(members[live[slot]], learner, replay, slot, bool(finite[slot]), state.env_steps, start_time)
                if ending.all():
                    live = []
                elif ending.any():  # the stopped members leave the stacks: the rest go on at their cost
                    keep = [slot for slot in range(len(live)) if not ending[slot]]
                    live = [live[slot] for slot in keep]
                    learner.keep(keep)
                    replay.keep(keep)
                    source.keep(keep)
                    if parts.evaluator is not None:
                        parts.evaluator.keep(keep)
                    first_stop = int(total_steps[live].min())
                    stats = None if stats is None else {name: value[keep] for name, value in stats.items()}
                    ready = None if ready is None else ready[keep]
                if (live or parts.single) and (checkpoint_due or interrupted or not live):
                    if checkpoint_due:
                        state.next_checkpoint = next_multiple(state.env_steps, cfg.checkpoint_every_steps or state.next_checkpoint)
                    for i in live:
                        _flush(members[i], state.env_steps)
                    path = save(parts, state, live, start_time)
                    if interrupted:
                        raise interrupted_error(stop, path, parts.folder, state.env_steps)
    finally:
        for i in live:  # stopped members closed theirs
            members[i].metrics.close()
        if parts.display is not None:
            parts.display.close()
        source.close()
        if parts.evaluator is not None:
            parts.evaluator.close()


def next_multiple(env_steps: int, every: int) -> int:
    """The next cadence point after `env_steps`: the first multiple of `every` above it (a chunk of Ray
    rows may cross several; a local step of N <= every envs crosses at most one, as `+= every` would)."""
    return (env_steps // every + 1) * every


def _flush(member: Member, env_steps: int) -> None:
    if member.tracker is not None:
        member.tracker.flush(env_steps)


def save(parts: Parts, state: LoopState, live: list[int], start_time: float) -> Path:
    """The checkpoint of the run folder (a single run's `agent`) or the group folder (the stacked `members`) at this step."""
    cfg, members = parts.members[0].cfg, parts.members
    payload = checkpoint_payload(
        "agent" if parts.single else "members",
        parts.learner.state_dict(),
        parts.replay if cfg.save_buffer else None,
        parts.source.state_dict(),
        state,
        live,
        [m.status for m in members],
        [m.tracker for m in members],
        [m.metrics for m in members],
        [m.result for m in members],
        start_time,
    )
    return save_checkpoint(parts.folder, payload, state.env_steps, cfg.checkpoint_keep)


def learn(cfgs: Sequence[Config], learner: Learner, replay: ReplayBuffer, active: np.ndarray, env_steps: int) -> Stats:
    """`gradient_steps` updates on fresh samples (`cfgs`: the members still training); prioritized
    replay anneals each member's beta and gets new priorities, a learning-rate schedule sets each
    member's Adam step size. Both are set once per round from the env step, so resume is exact."""
    for sampler, cfg in zip(replay.samplers, cfgs, strict=True):
        if isinstance(sampler, PrioritizedSampler):
            sampler.beta = linear_schedule(cfg.per_beta_start, 1.0, cfg.total_steps, env_steps)
    if any(cfg.learning_rate_end is not None for cfg in cfgs):  # none: the constant rates Adam was built with
        learner.set_learning_rates([learning_rate_at(cfg, env_steps) for cfg in cfgs])
    for _ in range(cfgs[0].gradient_steps):
        batch = learner.sample(replay, cfgs[0].batch_size, active)
        stats = learner.update(batch, active)
        learner.reprioritize(replay, batch, stats, active)
    return stats


def require_finite(finite: np.ndarray, last_good: int, env_steps: int) -> int:
    """A single run stops at non-finite weights or loss; returns the env step now known to be good."""
    if not finite.all():
        raise TrainingFailed(
            f"the loss or weights became NaN/inf between env step {last_good} and {env_steps}; the last good checkpoint is kept; {UPDATE_FIX}"
        )
    return env_steps


def _collect(source: RowSource, epsilons: Sequence[float], env_steps: int) -> int:
    try:
        return source.step(epsilons, env_steps)
    except NonFiniteEnvOutput as error:
        raise TrainingFailed(error.at_step(env_steps)) from None
    except TrainingFailed:
        raise  # a source that gave up says why itself (Ray actors that kept failing)
    except Exception as error:
        raise TrainingFailed(
            f"the env raised during step at env step {env_steps}: {type(error).__name__}: {error}; checkpoints written before it are kept"
        ) from error


def _stop(member: Member, learner: Learner, replay: ReplayBuffer, slot: int, finite: bool, env_steps: int, start_time: float) -> None:
    """Freeze a member: its final.pt (unless its weights are not finite), its counters and its files."""
    result = member.result
    result.env_steps = env_steps
    if finite:
        learner.export(slot).save(result.run_dir / "final.pt")
        result.buffer = replay if replay.members == 1 else replay.member(slot)
        result.wall_seconds = time.perf_counter() - start_time
        member.status = "solved" if result.solved_at_step is not None else "total_steps"
    else:
        member.status = f"failed: NaN/inf loss or weights before env step {env_steps}"
    member.metrics.close()


def interrupted_error(stop: StopRequest, path: Path, folder: Path, env_steps: int) -> TrainingInterrupted:
    name = stop.signal_name or "SIGINT"
    message = f"{name} at env step {env_steps:,}: checkpoint written to {path}; continue with: fastdqn train --resume {folder}"
    return TrainingInterrupted(message, path, 128 + (stop.signal_number or 2))


def torch_threads(cfg: Config) -> None:
    if cfg.torch_threads > 0:
        torch.set_num_threads(cfg.torch_threads)
