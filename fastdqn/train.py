"""The training loop: act -> env step -> extend -> update -> evaluate -> log, top to bottom."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fastdqn.agent import DQNAgent
from fastdqn.buffer import ReplayBuffer
from fastdqn.config import Config, ConfigError
from fastdqn.device import HostToDevice, resolve_device
from fastdqn.envs import env_spaces, make_envs, valid_rows
from fastdqn.evaluate import Evaluator
from fastdqn.frames import frame_replay_buffer, wants_frame_storage
from fastdqn.metrics import Metrics
from fastdqn.schedules import epsilon_at


@dataclass
class RunResult:
    agent: DQNAgent
    buffer: ReplayBuffer
    metrics: list[dict[str, Any]]
    run_dir: Path
    env_steps: int
    wall_seconds: float
    best_eval_return: float | None = None
    solved_at_step: int | None = None
    """First env step at which a greedy evaluation reached `stop_at_return`."""
    solved_at_seconds: float | None = None
    """Wall seconds from the start of `train` to that evaluation."""
    eval_history: list[tuple[int, float]] = field(default_factory=list)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def make_run_dir(cfg: Config) -> Path:
    name = cfg.run_name or f"{cfg.env_id.replace('/', '_').replace(':', '_')}-s{cfg.seed}-{datetime.now():%Y%m%d-%H%M%S-%f}"
    run_dir = Path(cfg.out_dir) / name
    if run_dir.exists() and any(run_dir.iterdir()):
        raise ConfigError(f"{run_dir} already holds a run; pick another --run-name or --out")
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(cfg.to_json())
    return run_dir


def train(cfg: Config, progress: bool = False, start_time: float | None = None) -> RunResult:
    """Train a DQN agent as `cfg` says; returns the agent, its buffer, the metric rows and the run folder."""
    start_time = time.perf_counter() if start_time is None else start_time
    device = resolve_device(cfg.device)
    if cfg.torch_threads > 0:
        torch.set_num_threads(cfg.torch_threads)
    seed_everything(cfg.seed)
    envs = make_envs(cfg.env_id, cfg.num_envs, cfg.vectorization_mode)
    spaces = env_spaces(envs, cfg.env_id)
    if wants_frame_storage(cfg.replay_storage, cfg.env_id, spaces.obs_shape, spaces.obs_dtype):
        buffer = frame_replay_buffer(cfg.buffer_capacity, spaces.obs_shape, cfg.num_envs, device, seed=cfg.seed)
    else:
        buffer = ReplayBuffer.create(cfg.buffer_capacity, spaces.obs_shape, spaces.obs_dtype, device, seed=cfg.seed)
    agent = DQNAgent(cfg, spaces, device)
    evaluator = Evaluator(cfg.env_id, cfg.eval_episodes, cfg.seed + 100_000, cfg.vectorization_mode) if cfg.eval_every_steps else None
    run_dir = make_run_dir(cfg)
    metrics = Metrics(run_dir, cfg.total_steps, start_time, show_progress=progress)
    result = RunResult(agent, buffer, metrics.rows, run_dir, 0, 0.0)
    to_device = HostToDevice(device)
    env_index = torch.arange(cfg.num_envs, device=device)  # lets FrameStorage link each env's rows

    obs_np, _ = envs.reset(seed=cfg.seed)
    obs = to_device("obs", obs_np)
    prev_done = np.zeros(cfg.num_envs, dtype=bool)
    episode_returns = np.zeros(cfg.num_envs)
    episode_lengths = np.zeros(cfg.num_envs, dtype=np.int64)
    env_steps, vector_steps, stats = 0, 0, None
    next_eval, next_log = cfg.eval_every_steps, cfg.log_every_steps
    try:
        while env_steps < cfg.total_steps:
            epsilon = epsilon_at(cfg, env_steps)
            actions = agent.act(obs, epsilon)
            next_obs_np, rewards, terminated, truncated, _ = envs.step(actions.cpu().numpy())  # the per-step sync
            next_obs = to_device("next_obs", next_obs_np)
            rows = {
                "obs": obs,
                "action": actions,
                "reward": to_device("reward", rewards),
                "next_obs": next_obs,
                "terminated": to_device("terminated", terminated),
                "env": env_index,
            }
            keep = valid_rows(prev_done)  # NEXT_STEP autoreset: drop each env's reset step
            if keep is not None:
                keep_index = torch.from_numpy(keep).to(device)
                rows = {name: value.to(device)[keep_index] for name, value in rows.items()}
            buffer.extend(rows)

            episode_returns = np.where(prev_done, 0.0, episode_returns + rewards)
            episode_lengths = np.where(prev_done, 0, episode_lengths + 1)
            prev_done = terminated | truncated
            env_steps += cfg.num_envs
            vector_steps += 1
            if prev_done.any():
                metrics.add_episodes(env_steps, episode_returns[prev_done], episode_lengths[prev_done])

            if env_steps >= cfg.learning_starts and len(buffer) >= cfg.batch_size and vector_steps % cfg.train_every == 0:
                for _ in range(cfg.gradient_steps):
                    stats = agent.update(buffer.sample_tensors(cfg.batch_size))
            obs = next_obs

            eval_returns = None
            if evaluator is not None and env_steps >= next_eval:
                next_eval += cfg.eval_every_steps
                eval_returns = evaluator.run(agent)
                if _record_eval(result, eval_returns, env_steps, start_time):
                    agent.save(run_dir / "best.pt")
            if env_steps >= next_log or eval_returns is not None or env_steps >= cfg.total_steps:
                next_log += cfg.log_every_steps if env_steps >= next_log else 0
                metrics.log(env_steps, agent.updates, epsilon, stats, eval_returns)
            if result.solved_at_step is not None:
                break
    finally:
        result.env_steps = env_steps
        agent.save(run_dir / "final.pt")
        metrics.close()
        envs.close()
        if evaluator is not None:
            evaluator.close()
    result.wall_seconds = time.perf_counter() - start_time
    if cfg.save_plot:
        from fastdqn.plot import plot_run

        plot_run(run_dir)
    return result


def _record_eval(result: RunResult, eval_returns: np.ndarray, env_steps: int, start_time: float) -> bool:
    """Track the best evaluation and the solve point; True when this one is the best so far."""
    cfg = result.agent.cfg
    mean = float(eval_returns.mean())
    result.eval_history.append((env_steps, mean))
    if cfg.stop_at_return is not None and mean >= cfg.stop_at_return and result.solved_at_step is None:
        result.solved_at_step = env_steps
        result.solved_at_seconds = time.perf_counter() - start_time
    if result.best_eval_return is None or mean > result.best_eval_return:
        result.best_eval_return = mean
        return True
    return False
