"""The Ape-X learner loop: take a chunk -> store it -> pay the updates it is owed -> broadcast -> evaluate -> log -> checkpoint.

The distributed twin of `train.train` (same buffer, agent, `_update`, evaluation, metrics, signals
and checkpoint writer), fed by Ray actors (distributed.py) instead of a local env. `metrics.csv` and
`episodes.csv` keep their meaning; `actors.csv` adds the actor side (see `ActorLog`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fastdqn.agent import DQNAgent
from fastdqn.checkpoint import apply_repairs, restoring
from fastdqn.config import Config, ConfigError
from fastdqn.device import resolve_device
from fastdqn.distributed import ActorLog, ActorPool, DistributedResult, _Metrics, _spaces, connect, extend_with_priorities, require_ray
from fastdqn.engine import interrupted_error, learn, record_eval, require_finite
from fastdqn.evaluate import Evaluator
from fastdqn.learners import SingleLearner
from fastdqn.metrics import check_run_csvs
from fastdqn.resume import checkpoint_payload, load_for_resume, restore_result, restore_rng, save_checkpoint
from fastdqn.run_state import LoopState
from fastdqn.runfolder import claims_run_folder
from fastdqn.schedules import epsilon_at
from fastdqn.signals import stop_on_signals
from fastdqn.train import build_replay, finish_run, make_run_dir, seed_everything

AfterChunk = Callable[[ActorPool, LoopState], None]
ACTIVE = np.ones(1, dtype=bool)


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
    """Train with `cfg.actors` Ray actors collecting; arguments as `train.train`'s.

    Args:
        after_chunk: called after each stored chunk with the actor pool and the loop's counters
            (tests use it to kill an actor at a known step).
    """
    start_time = time.perf_counter() if start_time is None else start_time
    if cfg.actors < 1:
        raise ConfigError(f"actors={cfg.actors}: train_distributed needs --actors N with N >= 1")
    ray = require_ray()  # before anything is written
    device = resolve_device(cfg.device)
    if cfg.torch_threads > 0:
        torch.set_num_threads(cfg.torch_threads)
    seed_everything(cfg.seed)
    saved = _load(cfg, resume) if resume is not None else None
    spaces = _spaces(cfg)
    buffer, _ = build_replay(cfg.replace(replay_storage="tensor"), spaces, device)  # n-step windows are folded by the actors
    agent = DQNAgent(cfg, spaces, device)
    learner = SingleLearner(agent)
    evaluator = Evaluator.for_run(cfg, device) if cfg.eval_every_steps else None
    started = connect(cfg)  # an unreachable cluster fails before a run folder is made
    run_dir = resume if resume is not None else make_run_dir(cfg, overwrite)
    state = LoopState(0, 0, cfg.eval_every_steps, cfg.log_every_steps, cfg.checkpoint_every_steps or cfg.total_steps)
    result = DistributedResult(agent, buffer, [], run_dir)
    rounds_owed = 0.0
    if saved is not None:
        start_time, rounds_owed = _restore(saved, state, result)
    resume_at = state.env_steps if saved is not None else None
    metrics_state = saved["metrics"][0] if saved is not None else None
    metrics = _Metrics(run_dir, cfg.total_steps, start_time, progress, resume_at=resume_at, state=metrics_state, config=cfg)
    actor_log = ActorLog(run_dir, cfg.actors, start_time, resume_at)
    result.metrics = metrics.rows
    pool: ActorPool | None = None
    stats, last_good_step = None, state.env_steps
    try:
        pool = ActorPool(ray, cfg, seed_base=cfg.seed + state.env_steps)  # resumed actors start fresh episodes, seeded apart
        if saved is not None:
            pool.restarts, pool.lost_chunks = list(saved["loop"]["actors"]["restarts"]), int(saved["loop"]["actors"]["lost_chunks"])
            pool.env_steps = list(saved["loop"]["actors"]["env_steps"])
        pool.run_env_steps = state.env_steps
        actor_log.begin(agent.updates, pool)
        pool.publish(agent)
        pool.start()
        with stop_on_signals() as stop:
            while True:
                chunk = pool.next_chunk(timeout=0.5)
                if chunk is not None:
                    # object-store arrays are read-only: copied once, as the buffer's write would anyway
                    rows = {name: torch.from_numpy(np.array(value)) for name, value in chunk["rows"].items()}
                    priorities = None if chunk["priorities"] is None else torch.from_numpy(np.array(chunk["priorities"]))
                    extend_with_priorities(buffer, rows, priorities)
                    state.env_steps += int(chunk["env_steps"])
                    state.vector_steps += 1  # chunks stored
                    pool.run_env_steps = state.env_steps
                    if len(chunk["episode_returns"]):
                        metrics.add_episodes(state.env_steps, chunk["episode_returns"], chunk["episode_lengths"])
                    if state.env_steps >= cfg.learning_starts:  # the single-process replay ratio, in whole rounds
                        rounds_owed += int(chunk["env_steps"]) / (cfg.num_envs * cfg.train_every)
                        while rounds_owed >= 1 and len(buffer) >= cfg.batch_size:
                            stats = learn([cfg], learner, buffer, ACTIVE, state.env_steps)
                            rounds_owed -= 1
                    if agent.updates - pool.published_at >= cfg.weights_every:
                        pool.publish(agent)
                    if after_chunk is not None:
                        after_chunk(pool, state)

                evaluation = None
                if chunk is not None and evaluator is not None and state.env_steps >= state.next_eval:
                    state.next_eval = (state.env_steps // cfg.eval_every_steps + 1) * cfg.eval_every_steps
                    # a diverged model is never evaluated, so it never competes for best.pt
                    last_good_step = require_finite(learner.finite(stats), last_good_step, state.env_steps)
                    evaluation = evaluator.run(agent, cfg.stop_at_return)
                    if record_eval(result, cfg, evaluation, state.env_steps, start_time):
                        agent.save(run_dir / "best.pt")
                done = state.env_steps >= cfg.total_steps or result.solved_at_step is not None
                if done:
                    pool.settle()  # requests that failed while the last chunks came in still count
                if chunk is not None and (state.env_steps >= state.next_log or evaluation is not None or done):
                    if state.env_steps >= state.next_log:
                        state.next_log = (state.env_steps // cfg.log_every_steps + 1) * cfg.log_every_steps
                    last_good_step = require_finite(learner.finite(stats), last_good_step, state.env_steps)
                    row = actor_log.log(state.env_steps, agent.updates, pool)
                    metrics.log(
                        state.env_steps,
                        agent.updates,
                        pool.epsilons[0] if pool.epsilons else epsilon_at(cfg, state.env_steps),
                        stats,
                        evaluation,
                    )
                    sps = "+".join(f"{row[f'actor{i}_sps']:,.0f}" for i in range(cfg.actors))
                    metrics.note(
                        f"actors {sps}/s  learner {row['updates_per_s']:,.0f} upd/s  queue {row['queue_depth']}  lost {row['lost_chunks']}"
                    )
                interrupted = stop.requested or (interrupt_at_step is not None and state.env_steps >= interrupt_at_step)
                if (chunk is not None and state.env_steps >= state.next_checkpoint) or done or interrupted:
                    if state.env_steps >= state.next_checkpoint:
                        state.next_checkpoint = (state.env_steps // (cfg.checkpoint_every_steps or cfg.total_steps) + 1) * (
                            cfg.checkpoint_every_steps or cfg.total_steps
                        )
                    last_good_step = require_finite(learner.finite(stats), last_good_step, state.env_steps)
                    path = _save(run_dir, cfg, agent, state, pool, rounds_owed, metrics, result, start_time)
                    if interrupted:
                        raise interrupted_error(stop, path, run_dir, state.env_steps)
                if done:
                    break
    finally:
        if pool is not None:
            pool.close()
            result.actor_env_steps, result.actor_restarts, result.lost_chunks = list(pool.env_steps), list(pool.restarts), pool.lost_chunks
        if started:
            ray.shutdown()
        actor_log.close()
        metrics.close()
        if evaluator is not None:
            evaluator.close()
    finish_run(cfg, result, state.env_steps, start_time, plot)
    return result


def _save(
    run_dir: Path,
    cfg: Config,
    agent: DQNAgent,
    state: LoopState,
    pool: ActorPool,
    rounds_owed: float,
    metrics: _Metrics,
    result: DistributedResult,
    start_time: float,
) -> Path:
    """A resumable checkpoint: the run's payload, with the actor pool's counters for the env (actors keep no state)."""
    actors = {"env_steps": list(pool.env_steps), "restarts": list(pool.restarts), "lost_chunks": pool.lost_chunks}
    no_env = {"env": None, "nstep": None, "position": None}
    kept = result.buffer if cfg.save_buffer else None
    payload = checkpoint_payload(
        "agent",
        agent.state_dict(),
        kept,
        no_env,
        state,
        [0],
        ["running"],
        [None],
        [metrics],
        [result],
        start_time,
        actors=actors,
        rounds_owed=rounds_owed,
    )
    return save_checkpoint(run_dir, payload, state.env_steps, cfg.checkpoint_keep)


def _load(cfg: Config, run_dir: Path) -> dict[str, Any]:
    saved = load_for_resume(cfg, run_dir)
    if "actors" not in saved["loop"]:
        raise ConfigError(f"cannot resume {run_dir} with --actors: it is a single-process run; resume it without --actors")
    saved["notes"] += check_run_csvs(run_dir, saved["loop"]["counters"][0], {"actors.csv": ActorLog.columns_for(cfg.actors)})
    return saved


def _restore(saved: dict[str, Any], state: LoopState, result: DistributedResult) -> tuple[float, float]:
    """Put a checkpoint back; returns the start time that continues wall time, and the updates still owed."""
    with restoring(saved["file"]):  # a damaged checkpoint: one line naming it
        result.agent.load_state_dict(saved["agent"])
        if saved["buffer"] is not None:
            result.buffer.load_state_dict(saved["buffer"])
        loop = saved["loop"]
        state.env_steps, state.vector_steps, state.next_eval, state.next_log, state.next_checkpoint = loop["counters"]
        restore_rng(saved["rng"])
        restore_result(result, saved["run"][0])
        start_time, rounds_owed = time.perf_counter() - float(saved["wall_seconds"]), float(loop["rounds_owed"])
    apply_repairs(saved, result.run_dir)
    return start_time, rounds_owed
