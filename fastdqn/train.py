"""A single run: its parts built as `cfg` says, trained by the engine's loop (engine.py) as K = 1."""

from __future__ import annotations

import random
import time
from pathlib import Path

import numpy as np
import torch

from fastdqn import engine
from fastdqn.agent import DQNAgent
from fastdqn.buffer import ReplayBuffer, UniformSampler
from fastdqn.collect import make_collector
from fastdqn.config import Config
from fastdqn.device import resolve_device
from fastdqn.engine import Member, Parts, TrainingFailed, TrainingInterrupted, torch_threads
from fastdqn.envs import EnvSpaces, make_envs
from fastdqn.episodes import EpisodeTracker
from fastdqn.evaluate import Evaluator
from fastdqn.frames import frame_storage
from fastdqn.learners import SingleEvaluator, SingleLearner
from fastdqn.metrics import Metrics
from fastdqn.nstep import NStepWriter
from fastdqn.per import PrioritizedSampler
from fastdqn.resume import load_for_resume, restore
from fastdqn.run_state import LoopState, RunResult, record_eval
from fastdqn.runfolder import claims_run_folder, make_run_folder
from fastdqn.sources import LocalSource

__all__ = ["TrainingFailed", "TrainingInterrupted", "build_replay", "make_run_dir", "record_eval", "seed_everything", "train"]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def make_run_dir(cfg: Config, overwrite: bool = False) -> Path:
    run_dir = make_run_folder(cfg, f"s{cfg.seed}", overwrite)  # only a fastdqn run is replaced, under its lock
    (run_dir / "config.json").write_text(cfg.to_json())
    return run_dir


def build_replay(cfg: Config, spaces: EnvSpaces, device: torch.device) -> tuple[ReplayBuffer, NStepWriter | None]:
    """The run's replay buffer (tensor or frame storage, uniform or prioritized) and its n-step writer."""
    sampler = PrioritizedSampler(cfg.buffer_capacity, device, cfg.per_alpha, cfg.per_eps, cfg.seed) if cfg.per else None
    frames = frame_storage(cfg, spaces.obs_shape, spaces.obs_dtype, device)
    if frames is not None:
        buffer = ReplayBuffer(frames, sampler or UniformSampler(device, cfg.seed))
    else:
        buffer = ReplayBuffer.create(
            cfg.buffer_capacity, spaces.obs_shape, spaces.obs_dtype, device, seed=cfg.seed, sampler=sampler, discount=cfg.n_step > 1
        )
    nstep = NStepWriter(cfg.n_step, cfg.gamma, cfg.num_envs, spaces.obs_shape, spaces.obs_dtype, device) if cfg.n_step > 1 else None
    return buffer, nstep


@claims_run_folder()  # checks and locks the run folder before anything is built; releases it on every exit
def train(
    cfg: Config,
    progress: bool = False,
    start_time: float | None = None,
    resume: Path | None = None,
    overwrite: bool = False,
    interrupt_at_step: int | None = None,
    plot: bool | None = None,
) -> RunResult:
    """Train a DQN agent as `cfg` says; returns the agent, its buffer, the metric rows and the run folder.

    The engine's loop (engine.py) with K = 1: the run's own agent as learner and its collector as
    row source, writing the run folder.

    Args:
        resume: a run folder to continue from its newest checkpoint (its config.json must match cfg
            except for total_steps).
        interrupt_at_step: behave as if SIGINT arrived at this env step (scripted preemption, tests).
        plot: write `returns.png` before returning (default: `cfg.save_plot`); the CLI passes False
            and plots after it has reported the run, so the plot never delays the result.
    """
    start_time = time.perf_counter() if start_time is None else start_time
    device = resolve_device(cfg.device)
    torch_threads(cfg)
    seed_everything(cfg.seed)
    saved = load_for_resume(cfg, resume) if resume is not None else None
    envs = make_envs(cfg.env_id, cfg.num_envs, cfg.env_backend, device, cfg.vectorization_mode)
    buffer, nstep = build_replay(cfg, envs.spaces, device)
    agent = DQNAgent(cfg, envs.spaces, device)
    evaluator = Evaluator.for_run(cfg, device) if cfg.eval_every_steps else None
    run_dir = resume if resume is not None else make_run_dir(cfg, overwrite)
    collector = make_collector(agent, envs, buffer, nstep)
    collector.reset(cfg.seed)
    episodes = EpisodeTracker(cfg.num_envs, envs.device, log_steps=-(-cfg.log_every_steps // cfg.num_envs) + 1)
    learner, source = SingleLearner(agent), LocalSource(collector, episodes, cfg.train_every)
    runner = SingleEvaluator(evaluator, cfg.stop_at_return) if evaluator is not None else None
    state = LoopState(0, 0, cfg.eval_every_steps, cfg.log_every_steps, cfg.checkpoint_every_steps or cfg.total_steps)
    result = RunResult(agent, buffer, [], run_dir)
    if saved is not None:
        _, start_time = restore(saved, learner, buffer, source, runner, state, [result], [episodes], [cfg.seed], run_dir, single=True)
    resume_at, metrics_state = (state.env_steps, saved["metrics"][0]) if saved is not None else (None, None)
    metrics = Metrics(run_dir, cfg.total_steps, start_time, progress, resume_at=resume_at, state=metrics_state, config=cfg)
    result.metrics, episodes.sink = metrics.rows, metrics
    member = Member(cfg, result, metrics, episodes)

    engine.run(Parts(learner, source, buffer, runner, [member], run_dir, single=True), state, start_time, interrupt_at_step)
    if cfg.save_plot if plot is None else plot:
        from fastdqn.plot import plot_run

        plot_run(run_dir)
    return result
