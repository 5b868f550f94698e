"""Resumable run checkpoints: what one holds, and how a run is put back from it.

A checkpoint holds the networks, the optimizer, the loop's counters and episode bookkeeping, the
metrics state, every RNG (python, numpy, torch, the agent's and the sampler's), the env state where it
can be read as plain data, and the replay buffer with its n-step windows (unless `--no-save-buffer`).
Everything is tensors and plain types, so it loads with `weights_only=True`.
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fastdqn.agent import DQNAgent
from fastdqn.buffer import ReplayBuffer
from fastdqn.checkpoint import (
    CheckpointError,
    apply_repairs,
    load_checkpoint,
    newest_intact_checkpoint,
    restoring,
    write_run_checkpoint,
)
from fastdqn.collect import Collector
from fastdqn.config import Config, ConfigError
from fastdqn.envs import DeviceVectorEnv
from fastdqn.episodes import EpisodeTracker
from fastdqn.metrics import Metrics, check_run_csvs
from fastdqn.nstep import NStepWriter
from fastdqn.run_state import LoopState, RunResult


def save_run_checkpoint(
    run_dir: Path,
    cfg: Config,
    agent: DQNAgent,
    buffer: ReplayBuffer,
    nstep: NStepWriter | None,
    envs: DeviceVectorEnv,
    collector: Collector,
    state: LoopState,
    episodes: EpisodeTracker,
    metrics: Metrics,
    result: RunResult,
    start_time: float,
) -> Path:
    """Write the run's state at `state.env_steps` into `run_dir/checkpoints/` (atomic, newest K kept)."""
    payload = {
        "agent": agent.state_dict(),
        "buffer": buffer.state_dict() if cfg.save_buffer else None,
        "nstep": nstep.state_dict() if nstep is not None else None,
        "env": envs.state_dict(),
        "loop": {
            "collector": collector.state_dict(),
            "episodes": episodes.state_dict(),
            "counters": [state.env_steps, state.vector_steps, state.next_eval, state.next_log, state.next_checkpoint],
        },
        "run": results_state(result, start_time),
        "metrics": metrics.state_dict(),
        "rng": rng_state(),
    }
    metrics.flush()
    return write_run_checkpoint(run_dir, payload, state.env_steps, cfg.checkpoint_keep)


RUN_SECTIONS = ("agent", "buffer", "nstep", "env", "loop", "run", "metrics", "rng")
METRICS_KEYS = ("episodes", "recent_returns", "recent_lengths")
"""What `Metrics` takes back; checked here because it is put back after metrics.csv is cut."""
AGENT_KEYS = ("config", "spaces", "signature", "q_network", "target_network", "optimizer", "updates", "generator")


def read_run_config(run_dir: Path) -> Config:
    """A run folder's config.json through Config's checks; a damaged or hand-broken one is refused in one line naming it."""
    path = run_dir / "config.json"
    try:
        return Config.load(path)
    except FileNotFoundError:
        raise ConfigError(f"--resume {run_dir}: no config.json there; is it a fastdqn run folder?") from None
    except (OSError, UnicodeDecodeError, ValueError, TypeError) as error:  # JSONDecodeError and ConfigError are ValueErrors
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise ConfigError(
            f"--resume {run_dir}: {path} is not a valid fastdqn config ({reason}); fix that value or put back the file"
        ) from None


def load_resumable(path: Path) -> dict[str, Any]:
    """A run checkpoint, refused (CheckpointError) unless it is readable and holds every section a resume puts back."""
    payload = load_checkpoint(path)
    if "loop" not in payload:
        raise CheckpointError(f"{path} holds weights only, not a resumable run")
    missing = [name for name in RUN_SECTIONS if name not in payload]
    missing += [f"agent.{name}" for name in AGENT_KEYS if name not in payload["agent"]]
    metrics = payload.get("metrics")
    missing += [f"metrics.{name}" for name in METRICS_KEYS if not isinstance(metrics, dict) or name not in metrics]
    counters = payload["loop"].get("counters") if isinstance(payload["loop"], dict) else None
    if not isinstance(counters, list) or len(counters) != 5 or not all(isinstance(c, int) for c in counters):
        missing.append("loop.counters")
    if missing:
        raise CheckpointError(f"{path} is incomplete (no {', '.join(missing)})")
    try:
        Config.from_dict(payload["agent"]["config"])
    except (ValueError, TypeError) as error:
        raise CheckpointError(f"{path} holds a config fastdqn cannot read ({str(error).strip()[:200]})") from None
    return payload


def load_for_resume(cfg: Config, run_dir: Path) -> dict[str, Any]:
    """The newest intact checkpoint of `run_dir`, refused with the reason when `cfg` cannot continue it.

    Every file of the run is checked before any is changed: config.json, the checkpoints (an
    unreadable newest one gives way to the next older one, said in one line), metrics.csv and
    episodes.csv (a torn last line is noted here and dropped when the run reopens them). The
    payload's `file` names the checkpoint it came from; the repairs (`damaged`, `notes`) are made
    by `apply_repairs` once the checkpoint is back in place.
    """
    read_run_config(run_dir)
    payload = newest_intact_checkpoint(run_dir, load_resumable)
    saved_cfg = Config.from_dict(payload["agent"]["config"])
    mismatched = [
        name
        for name in ("env_id", "env_backend", "network", "hidden_dim", "num_envs", "buffer_capacity", "n_step", "per")
        if getattr(saved_cfg, name) != getattr(cfg, name)
    ]
    if mismatched:
        detail = ", ".join(f"{name}: checkpoint {getattr(saved_cfg, name)!r}, now {getattr(cfg, name)!r}" for name in mismatched)
        raise ConfigError(f"cannot resume {run_dir}: the run was started with different settings ({detail})")
    if payload["loop"]["counters"][0] >= cfg.total_steps:
        raise ConfigError(
            f"{run_dir} already finished at {payload['loop']['counters'][0]:,} env steps; pass a larger --total-steps to extend it"
        )
    return {**payload, "notes": check_run_csvs(run_dir, payload["loop"]["counters"][0])}


def restore_run(
    saved: dict[str, Any],
    state: LoopState,
    result: RunResult,
    envs: DeviceVectorEnv,
    collector: Collector,
    nstep: NStepWriter | None,
    episodes: EpisodeTracker,
) -> float:
    """Put a checkpoint back into the loop's objects; returns the start time that continues wall time."""
    with restoring(saved.get("file", "the checkpoint")):  # a damaged checkpoint: one line naming it; no file is changed yet
        result.agent.load_state_dict(saved["agent"])
        if saved["buffer"] is not None:
            result.buffer.load_state_dict(saved["buffer"])
        if nstep is not None and saved["buffer"] is not None:  # pending rows only make sense with the rows before them
            nstep.load_state_dict(saved["nstep"])
        loop = saved["loop"]
        state.env_steps, state.vector_steps, state.next_eval, state.next_log, state.next_checkpoint = loop["counters"]
        if saved["env"] is not None:
            envs.load_state_dict(saved["env"])
            collector.load_state_dict(loop["collector"])
            episodes.load_state_dict(loop["episodes"])
        else:  # envs whose state cannot be saved start fresh episodes, seeded apart from the first start
            collector.reset(result.agent.cfg.seed + state.env_steps)
        episodes.log_start = state.env_steps
        restore_rng(saved["rng"])
        start_time = restore_results(result, saved["run"])
    apply_repairs(saved, result.run_dir)
    return start_time


def results_state(result: RunResult, start_time: float) -> dict[str, Any]:
    """A checkpoint's `run` section: wall time so far, the best evaluation, the solve point, the evaluations."""
    return {
        "wall_seconds": time.perf_counter() - start_time,
        "best_eval_return": result.best_eval_return,
        "solved_at_step": result.solved_at_step,
        "solved_at_seconds": result.solved_at_seconds,
        "eval_history": [list(item) for item in result.eval_history],
    }


def restore_results(result: RunResult, run: dict[str, Any]) -> float:
    """Put a `run` section back; returns the start time that continues wall time."""
    result.best_eval_return, result.solved_at_step, result.solved_at_seconds = (
        run["best_eval_return"],
        run["solved_at_step"],
        run["solved_at_seconds"],
    )
    result.eval_history = [(int(step), float(mean)) for step, mean in run["eval_history"]]
    return time.perf_counter() - float(run["wall_seconds"])


def rng_state() -> dict[str, Any]:
    """The process-wide generators (python, numpy, torch) as tensors and plain data."""
    numpy_state: dict[str, Any] = np.random.get_state(legacy=False)
    key = torch.from_numpy(numpy_state["state"]["key"].astype(np.int64))
    return {
        "python": random.getstate(),
        "numpy": {**numpy_state, "state": {"key": key, "pos": numpy_state["state"]["pos"]}},
        "torch": torch.get_rng_state(),
    }


def restore_rng(rng: dict[str, Any]) -> None:
    random.setstate(rng["python"])
    numpy_state = rng["numpy"]
    np.random.set_state(
        {**numpy_state, "state": {"key": numpy_state["state"]["key"].numpy().astype(np.uint32), "pos": numpy_state["state"]["pos"]}}
    )
    torch.set_rng_state(rng["torch"])
