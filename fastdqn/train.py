"""The training loop: act -> env step -> extend -> update -> evaluate -> log -> checkpoint, top to bottom."""

from __future__ import annotations

import random
import time
from pathlib import Path

import numpy as np
import torch

from fastdqn.agent import DQNAgent
from fastdqn.buffer import ReplayBuffer
from fastdqn.collect import Collector, make_collector
from fastdqn.config import Config, ConfigError, FastDQNError
from fastdqn.device import resolve_device
from fastdqn.envs import EnvSpaces, EnvStep, make_envs
from fastdqn.episodes import EpisodeTracker
from fastdqn.evaluate import Evaluation, Evaluator
from fastdqn.finite import NonFiniteEnvOutput
from fastdqn.frames import frame_replay_buffer, wants_frame_storage
from fastdqn.metrics import Metrics
from fastdqn.nstep import NStepWriter
from fastdqn.per import PrioritizedSampler
from fastdqn.resume import load_for_resume, restore_run, save_run_checkpoint
from fastdqn.run_state import LoopState, RunResult
from fastdqn.runfolder import claims_run_folder, make_run_folder
from fastdqn.schedules import epsilon_at, linear_schedule
from fastdqn.signals import StopRequest, stop_on_signals


class TrainingFailed(FastDQNError):
    """Training cannot go on (non-finite loss, an env that raised); earlier checkpoints are kept."""

    exit_code = 1


class TrainingInterrupted(FastDQNError):
    """SIGINT or SIGTERM arrived: a checkpoint was written at the current step."""

    def __init__(self, message: str, checkpoint: Path, exit_code: int):
        super().__init__(message)
        self.checkpoint = checkpoint
        self.exit_code = exit_code


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
    if wants_frame_storage(cfg.replay_storage, cfg.env_id, spaces.obs_shape, spaces.obs_dtype):
        if cfg.n_step > 1:
            raise ConfigError(f"n_step={cfg.n_step} needs --replay-storage tensor: frame storage keeps no per-row discount")
        buffer = frame_replay_buffer(cfg.buffer_capacity, spaces.obs_shape, cfg.num_envs, device, seed=cfg.seed)
        buffer.sampler = sampler or buffer.sampler
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

    Args:
        resume: a run folder to continue from its newest checkpoint (its config.json must match cfg
            except for total_steps).
        interrupt_at_step: behave as if SIGINT arrived at this env step (scripted preemption, tests).
        plot: write `returns.png` before returning (default: `cfg.save_plot`); the CLI passes False
            and plots after it has reported the run, so the plot never delays the result.
    """
    start_time = time.perf_counter() if start_time is None else start_time
    device = resolve_device(cfg.device)
    if cfg.torch_threads > 0:
        torch.set_num_threads(cfg.torch_threads)
    seed_everything(cfg.seed)
    saved = load_for_resume(cfg, resume) if resume is not None else None
    envs = make_envs(cfg.env_id, cfg.num_envs, cfg.env_backend, device, cfg.vectorization_mode)
    buffer, nstep = build_replay(cfg, envs.spaces, device)
    agent = DQNAgent(cfg, envs.spaces, device)
    evaluator = Evaluator.for_run(cfg, device) if cfg.eval_every_steps else None
    run_dir = resume if resume is not None else make_run_dir(cfg, overwrite)
    collector = make_collector(agent, envs, buffer, nstep)
    collector.reset(cfg.seed)
    state = LoopState(0, 0, cfg.eval_every_steps, cfg.log_every_steps, cfg.checkpoint_every_steps or cfg.total_steps)
    episodes = EpisodeTracker(cfg.num_envs, envs.device, log_steps=-(-cfg.log_every_steps // cfg.num_envs) + 1)
    result = RunResult(agent, buffer, [], run_dir)
    if saved is not None:
        start_time = restore_run(saved, state, result, envs, collector, nstep, episodes)
    resume_at, metrics_state = (state.env_steps, saved["metrics"]) if saved is not None else (None, None)
    metrics = Metrics(run_dir, cfg.total_steps, start_time, progress, resume_at=resume_at, state=metrics_state, config=cfg)
    result.metrics, episodes.sink = metrics.rows, metrics
    stats, last_good_step = None, state.env_steps
    try:
        with stop_on_signals() as stop:
            while state.env_steps < cfg.total_steps:
                epsilon = epsilon_at(cfg, state.env_steps)
                step = _collect(collector, epsilon, state.env_steps)  # act -> env step -> replay write
                state.env_steps += cfg.num_envs
                state.vector_steps += 1
                episodes.record(step, state.env_steps)
                if state.env_steps >= cfg.learning_starts and len(buffer) >= cfg.batch_size and state.vector_steps % cfg.train_every == 0:
                    stats = _update(cfg, agent, buffer, state.env_steps)

                evaluation = None
                if evaluator is not None and state.env_steps >= state.next_eval:
                    state.next_eval += cfg.eval_every_steps
                    # a diverged model is never evaluated, so it never competes for best.pt
                    last_good_step = _check_finite(agent, stats, last_good_step, state.env_steps)
                    evaluation = evaluator.run(agent, cfg.stop_at_return)  # stops early once it cannot pass
                    if record_eval(result, cfg, evaluation, state.env_steps, start_time):
                        agent.save(run_dir / "best.pt")
                done = state.env_steps >= cfg.total_steps or result.solved_at_step is not None
                if state.env_steps >= state.next_log or evaluation is not None or done:
                    state.next_log += cfg.log_every_steps if state.env_steps >= state.next_log else 0
                    last_good_step = _check_finite(agent, stats, last_good_step, state.env_steps)
                    episodes.flush(state.env_steps)
                    metrics.log(state.env_steps, agent.updates, epsilon, stats, evaluation)
                interrupted = stop.requested or (interrupt_at_step is not None and state.env_steps >= interrupt_at_step)
                if state.env_steps >= state.next_checkpoint or done or interrupted:
                    state.next_checkpoint += cfg.checkpoint_every_steps if state.env_steps >= state.next_checkpoint else 0
                    last_good_step = _check_finite(agent, stats, last_good_step, state.env_steps)
                    episodes.flush(state.env_steps)
                    path = save_run_checkpoint(
                        run_dir, cfg, agent, buffer, nstep, envs, collector, state, episodes, metrics, result, start_time
                    )
                    if interrupted:
                        raise _interrupted(stop, path, run_dir, state.env_steps)
                if done:
                    break
    finally:
        metrics.close()
        envs.close()
        if evaluator is not None:
            evaluator.close()
    finish_run(cfg, result, state.env_steps, start_time, plot)
    return result


def finish_run(cfg: Config, result: RunResult, env_steps: int, start_time: float, plot: bool | None) -> None:
    """After the loop: `final.pt`, the run's length and wall time, and `returns.png` unless `plot` (or cfg) says not."""
    result.agent.save(result.run_dir / "final.pt")
    result.env_steps = env_steps
    result.wall_seconds = time.perf_counter() - start_time
    if cfg.save_plot if plot is None else plot:
        from fastdqn.plot import plot_run

        plot_run(result.run_dir)


def _update(cfg: Config, agent: DQNAgent, buffer: ReplayBuffer, env_steps: int) -> dict[str, torch.Tensor]:
    """`gradient_steps` updates on fresh samples; prioritized replay anneals beta and gets new priorities."""
    sampler = buffer.sampler
    if isinstance(sampler, PrioritizedSampler):
        sampler.beta = linear_schedule(cfg.per_beta_start, 1.0, cfg.total_steps, env_steps)
    for _ in range(cfg.gradient_steps):
        batch = buffer.sample_tensors(cfg.batch_size)
        stats = agent.update(batch)
        if isinstance(sampler, PrioritizedSampler) and batch.storage_index is not None:
            buffer.update_priorities(batch.storage_index, stats["td_error"].abs())
    return stats


def _collect(collector: Collector, epsilon: float, env_steps: int) -> EnvStep:
    try:
        return collector.step(epsilon)
    except NonFiniteEnvOutput as error:
        raise TrainingFailed(error.at_step(env_steps)) from None
    except Exception as error:
        raise TrainingFailed(
            f"the env raised during step at env step {env_steps}: {type(error).__name__}: {error}; checkpoints written before it are kept"
        ) from error


def _check_finite(agent: DQNAgent, stats: dict[str, torch.Tensor] | None, last_good_step: int, env_steps: int) -> int:
    """Refuse to log or checkpoint non-finite weights; returns the env step now known to be good."""
    if last_good_step == env_steps:
        return env_steps  # checked already at this step (a log row and a checkpoint fall on the same step)
    finite = bool(torch.isfinite(agent.online.data).all()) and (stats is None or bool(torch.isfinite(stats["loss"])))  # sync point
    if not finite:
        raise TrainingFailed(
            f"the loss or weights became NaN/inf between env step {last_good_step} and {env_steps}; "
            f"the last good checkpoint is kept; lower --learning-rate or set --max-grad-norm"
        )
    return env_steps


def record_eval(result: RunResult, cfg: Config, evaluation: Evaluation, env_steps: int, start_time: float) -> bool:
    """Track the best evaluation and the solve point; True when this one is the best so far.

    An evaluation cut short (its mean could no longer reach `stop_at_return`) is logged, but its
    partial mean is no measure of the policy, so it neither solves nor competes for `best.pt`.
    """
    mean = float(evaluation.returns.mean())
    result.eval_history.append((env_steps, mean))
    if not evaluation.complete:
        return False
    if cfg.stop_at_return is not None and mean >= cfg.stop_at_return and result.solved_at_step is None:
        result.solved_at_step = env_steps
        result.solved_at_seconds = time.perf_counter() - start_time
    if result.best_eval_return is None or mean > result.best_eval_return:
        result.best_eval_return = mean
        return True
    return False


def _interrupted(stop: StopRequest, path: Path, run_dir: Path, env_steps: int) -> TrainingInterrupted:
    name = stop.signal_name or "SIGINT"
    message = f"{name} at env step {env_steps:,}: checkpoint written to {path}; continue with: fastdqn train --resume {run_dir}"
    return TrainingInterrupted(message, path, 128 + (stop.signal_number or 2))
