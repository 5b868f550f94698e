"""Ray actors as a row source of the engine's loop: `fastdqn train --actors N` (Ape-X; distributed.py).

`ActorSource` takes the next chunk of rows any actor has ready (or none within half a second),
stores it (with its initial priorities under PER), owes the learner `env_steps / (num_envs *
train_every)` rounds of updates, the single-process replay ratio, and sends new weights every
`weights_every` updates. At the end of a run it settles the actors' counts; each log row adds one to
`actors.csv`. `train_distributed` builds a single run around it and trains it with `engine.run`,
so evaluation, the finite check, logging and checkpoints are the single run's own.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fastdqn import engine
from fastdqn.agent import DQNAgent
from fastdqn.buffer import ReplayBuffer
from fastdqn.config import Config, ConfigError
from fastdqn.device import resolve_device
from fastdqn.distributed import ActorLog, ActorPool, DistributedResult, connect, extend_with_priorities, require_ray
from fastdqn.engine import Member, Parts, torch_threads
from fastdqn.envs import EnvSpaces, make_envs
from fastdqn.evaluate import Evaluator
from fastdqn.learners import SingleEvaluator, SingleLearner
from fastdqn.metrics import Metrics, check_run_csvs
from fastdqn.resume import load_for_resume, restore
from fastdqn.run_state import LoopState
from fastdqn.runfolder import claims_run_folder
from fastdqn.schedules import epsilon_at
from fastdqn.train import build_replay, make_run_dir, seed_everything

AfterChunk = Callable[[ActorPool, LoopState], None]


class _Metrics(Metrics):
    """A run's metrics whose progress line also shows the actors' side."""

    def note(self, text: str) -> None:
        """Append the actors' side to the progress bar's status."""
        if self.progress is not None:
            task = self.progress.tasks[0]
            self.progress.update(task.id, status=f"{task.fields['status']}  {text}")
            self.progress.refresh()


def _spaces(cfg: Config) -> EnvSpaces:
    """The env's spaces: the learner steps no env, but its agent and replay are built from them."""
    envs = make_envs(cfg.env_id, 1, "gymnasium", "cpu", cfg.vectorization_mode)  # the learner steps no env; it needs the spaces
    try:
        return envs.spaces
    finally:
        envs.close()


class ActorSource:
    """`cfg.actors` Ray actors feeding one run's replay (K = 1); see the module docstring.

    Args:
        ray: the `ray` module; `started`: this run started the runtime, so it shuts it down.
        after_chunk: called after each stored chunk with the pool and the loop's counters (tests).
    """

    def __init__(self, ray: Any, started: bool, cfg: Config, agent: DQNAgent, replay: ReplayBuffer, after_chunk: AfterChunk | None):
        self.ray, self.started, self.cfg, self.agent, self.replay, self.after_chunk = ray, started, cfg, agent, replay, after_chunk
        self.pool: ActorPool | None = None
        self.seed_base = cfg.seed  # resumed actors start fresh episodes, seeded apart (`load_state_dict`)
        self.saved_actors: dict[str, Any] | None = None
        self.rounds_owed = 0.0
        self.taken = 0
        self.metrics: _Metrics | None = None  # set by the entry once built: finished episodes go there
        self.actor_log: ActorLog | None = None
        self.result: DistributedResult | None = None

    def _start(self, env_steps: int) -> ActorPool:
        pool = ActorPool(self.ray, self.cfg, seed_base=self.seed_base)
        if self.saved_actors is not None:
            pool.restarts, pool.lost_chunks = list(self.saved_actors["restarts"]), int(self.saved_actors["lost_chunks"])
            pool.env_steps = list(self.saved_actors["env_steps"])
        pool.run_env_steps = env_steps
        if self.actor_log is not None:
            self.actor_log.begin(self.agent.updates, pool)
        pool.publish(self.agent)
        pool.start()
        self.pool = pool
        return pool

    def epsilons(self, cfgs: Sequence[Config], env_steps: int) -> list[float]:
        """The rate logged with the rows: actor 0's Ape-X epsilon, or one actor's schedule."""
        epsilons = self.pool.epsilons if self.pool is not None else None
        return [epsilons[0] if epsilons else epsilon_at(self.cfg, env_steps)]

    def step(self, epsilons: Sequence[float], env_steps: int) -> int:
        pool = self.pool if self.pool is not None else self._start(env_steps)
        chunk = pool.next_chunk(timeout=0.5)
        self.taken = 0 if chunk is None else int(chunk["env_steps"])
        if chunk is None:
            return 0
        # object-store arrays are read-only: copied once, as the buffer's write would anyway
        rows = {name: torch.from_numpy(np.array(value)) for name, value in chunk["rows"].items()}
        priorities = None if chunk["priorities"] is None else torch.from_numpy(np.array(chunk["priorities"]))
        extend_with_priorities(self.replay, rows, priorities)
        pool.run_env_steps = env_steps + self.taken
        if len(chunk["episode_returns"]) and self.metrics is not None:
            self.metrics.add_episodes(env_steps + self.taken, chunk["episode_returns"], chunk["episode_lengths"])
        return self.taken

    def rounds_due(self, state: LoopState, taken: int) -> int:
        if taken and state.env_steps >= self.cfg.learning_starts:  # the single-process replay ratio, in whole rounds
            self.rounds_owed += taken / (self.cfg.num_envs * self.cfg.train_every)
        return int(self.rounds_owed) if self.rounds_owed >= 1 else 0

    def after_learning(self, rounds: int, state: LoopState) -> None:
        for _ in range(rounds):
            self.rounds_owed -= 1
        assert self.pool is not None
        if self.agent.updates - self.pool.published_at >= self.cfg.weights_every:
            self.pool.publish(self.agent)
        if self.taken and self.after_chunk is not None:
            self.after_chunk(self.pool, state)

    def settle(self) -> None:
        if self.pool is not None:
            self.pool.settle()  # requests that failed while the last chunks came in still count

    def logged(self, state: LoopState) -> None:
        if self.pool is None or self.actor_log is None or self.metrics is None:
            return
        row = self.actor_log.log(state.env_steps, self.agent.updates, self.pool)
        sps = "+".join(f"{row[f'actor{i}_sps']:,.0f}" for i in range(self.cfg.actors))
        self.metrics.note(
            f"actors {sps}/s  learner {row['updates_per_s']:,.0f} upd/s  queue {row['queue_depth']}  lost {row['lost_chunks']}"
        )

    def keep(self, slots: Sequence[int]) -> None:
        """One run: never shrinks."""

    def state_dict(self) -> dict[str, Any]:
        """No env state (actors keep none); the loop gets the actors' counters and the updates still owed."""
        pool = self.pool
        if pool is None:  # not started yet: what a resume brought
            actors = self.saved_actors or {"env_steps": [0] * self.cfg.actors, "restarts": [0] * self.cfg.actors, "lost_chunks": 0}
        else:
            actors = {"env_steps": list(pool.env_steps), "restarts": list(pool.restarts), "lost_chunks": pool.lost_chunks}
        return {"env": None, "nstep": None, "position": None, "loop": {"actors": actors, "rounds_owed": self.rounds_owed}}

    def load_state_dict(self, state: dict[str, Any], seeds: Sequence[int], windows: bool) -> bool:
        self.saved_actors, self.rounds_owed = state["loop"]["actors"], float(state["loop"]["rounds_owed"])
        self.seed_base = seeds[0]
        return False

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()
            if self.result is not None:
                self.result.actor_env_steps, self.result.actor_restarts = list(self.pool.env_steps), list(self.pool.restarts)
                self.result.lost_chunks = self.pool.lost_chunks
        if self.started:
            self.ray.shutdown()
        if self.actor_log is not None:
            self.actor_log.close()


@claims_run_folder()  # as train.train: the run folder is checked and locked before anything is built
def train_distributed(
    cfg: Config,
    progress: bool = False,
    start_time: float | None = None,
    resume: Path | None = None,
    overwrite: bool = False,
    interrupt_at_step: int | None = None,
    plot: bool | None = None,
    after_chunk: AfterChunk | None = None,
) -> DistributedResult:
    """Train with `cfg.actors` Ray actors collecting; arguments as `train.train`'s, and `after_chunk` (`ActorSource`)."""
    start_time = time.perf_counter() if start_time is None else start_time
    if cfg.actors < 1:
        raise ConfigError(f"actors={cfg.actors}: train_distributed needs --actors N with N >= 1")
    ray = require_ray()  # before anything is written
    device = resolve_device(cfg.device)
    torch_threads(cfg)
    seed_everything(cfg.seed)
    saved = _load(cfg, resume) if resume is not None else None
    spaces = _spaces(cfg)
    buffer, _ = build_replay(cfg.replace(replay_storage="tensor"), spaces, device)  # n-step windows are folded by the actors
    agent = DQNAgent(cfg, spaces, device)
    evaluator = Evaluator.for_run(cfg, device) if cfg.eval_every_steps else None
    runner = SingleEvaluator(evaluator, cfg.stop_at_return) if evaluator is not None else None
    started = connect(cfg)  # an unreachable cluster fails before a run folder is made
    run_dir = resume if resume is not None else make_run_dir(cfg, overwrite)
    learner, source = SingleLearner(agent), ActorSource(ray, started, cfg, agent, buffer, after_chunk)
    state = LoopState(0, 0, cfg.eval_every_steps, cfg.log_every_steps, cfg.checkpoint_every_steps or cfg.total_steps)
    result = source.result = DistributedResult(agent, buffer, [], run_dir)
    if saved is not None:
        _, start_time = restore(saved, learner, buffer, source, runner, state, [result], [], [cfg.seed], run_dir, single=True)
    resume_at = state.env_steps if saved is not None else None
    metrics_state = saved["metrics"][0] if saved is not None else None
    metrics = source.metrics = _Metrics(
        run_dir, cfg.total_steps, start_time, progress, resume_at=resume_at, state=metrics_state, config=cfg
    )
    source.actor_log = ActorLog(run_dir, cfg.actors, start_time, resume_at)
    result.metrics = metrics.rows
    member = Member(cfg, result, metrics, None)

    engine.run(Parts(learner, source, buffer, runner, [member], run_dir, single=True), state, start_time, interrupt_at_step)
    if cfg.save_plot if plot is None else plot:
        from fastdqn.plot import plot_run

        plot_run(run_dir)
    return result


def _load(cfg: Config, run_dir: Path) -> dict[str, Any]:
    saved = load_for_resume(cfg, run_dir)
    if "actors" not in saved["loop"]:
        raise ConfigError(f"cannot resume {run_dir} with --actors: it is a single-process run; resume it without --actors")
    saved["notes"] += check_run_csvs(run_dir, saved["loop"]["counters"][0], {"actors.csv": ActorLog.columns_for(cfg.actors)})
    return saved
