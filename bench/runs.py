"""Whole training runs for `make bench`: collection without updates, and training at a fixed replay ratio.

Both call `fastdqn.train` (or the tutorial loop) with eval, plots and periodic checkpoints off, and
report the run's steady env steps/s: the median over its metric rows with the first row (set-up,
learning starts, compile) left out.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

import fastdqn
from bench.baselines.tutorial_loop import TutorialResult, TutorialSettings, run_tutorial
from bench.cases import Profile, synchronize
from fastdqn import Config, DQNAgent


@dataclass(frozen=True)
class Ratio:
    """A replay ratio as the issue states it: one update of `batch_size` per `env_steps` env steps."""

    name: str
    batch_size: int
    env_steps: int

    def schedule(self, num_envs: int) -> tuple[int, int]:
        """(train_every, gradient_steps) that give this ratio with `num_envs` envs."""
        if num_envs >= self.env_steps:
            return 1, num_envs // self.env_steps
        return self.env_steps // num_envs, 1


RATIOS = {"tutorial": Ratio("tutorial", 64, 1), "1per16": Ratio("1per16", 128, 16)}
"""`tutorial`: one update of batch 64 per env step. `1per16`: one update of batch 128 per 16 env steps."""


def steady_sps(rows: list[dict[str, Any]]) -> float:
    """Median env steps/s over a run's metric rows, the first (set-up, learning starts, compile) left out."""
    values = [float(r["sps"]) for r in rows[1:] if r["sps"] != ""]
    if not values:
        values = [float(r["sps"]) for r in rows if r["sps"] != ""]
    return statistics.median(values)


@contextmanager
def timed_updates(device: str) -> Iterator[list[float]]:
    """Accumulate wall seconds spent inside `DQNAgent.update` while the block runs (one-element list)."""
    original = DQNAgent.update
    spent = [0.0]

    def update_timed(self: DQNAgent, batch: Any) -> Any:
        start = time.perf_counter()
        stats = original(self, batch)
        synchronize(device)  # on cuda this sync is the price of attributing time; on cpu a no-op
        spent[0] += time.perf_counter() - start
        return stats

    setattr(DQNAgent, "update", update_timed)  # noqa: B010 (a class attribute swapped for the block only)
    try:
        yield spent
    finally:
        setattr(DQNAgent, "update", original)  # noqa: B010


def base_config(
    num_envs: int, device: str, total_steps: int, out_dir: Path, learning_starts: int, preset: str | None = "tutorial"
) -> Config:
    """A preset's settings (the tutorial's; None: the defaults, `Config()`), eval and plots off, length in env steps.

    Periodic resumable checkpoints are turned off where the Config has them (one is still written at
    the end): a throughput figure should not depend on how often a run saves its buffer to disk.
    """
    start = fastdqn.preset(preset) if preset is not None else Config()
    if "checkpoint_every_steps" in {f.name for f in dataclasses.fields(Config)}:
        start = start.replace(checkpoint_every_steps=0)
    return start.replace(
        num_envs=num_envs,
        device=device,
        total_steps=total_steps,
        learning_starts=learning_starts,
        eval_every_steps=0,
        stop_at_return=None,
        save_plot=False,
        out_dir=str(out_dir),
        log_every_steps=max(total_steps // 8, num_envs),
    )


def collect(num_envs: int, device: str, profile: Profile, out_dir: Path, backend: str = "gymnasium") -> Callable[[], dict[str, float]]:
    """`fastdqn.train` of the default preset with updates turned off (act + env step + extend + bookkeeping).

    `backend`: the env backend; `torch-fused` is the native env with `--fuse-step on`.
    """
    total = min(num_envs * profile.collect_steps_per_env, 2_000_000)
    total = max(total, 16 * num_envs)
    runs = iter(range(1_000_000))

    def run() -> dict[str, float]:
        cfg = base_config(num_envs, device, total, out_dir, learning_starts=0, preset=None)
        cfg = cfg.replace(
            train_every=10**9, run_name=f"collect-{backend}-{num_envs}-{next(runs)}"
        )  # no vector step is a multiple: no update
        if backend != "gymnasium":
            cfg = cfg.replace(env_backend="torch", fuse_step="on" if backend == "torch-fused" else "off")
            cfg = cfg.replace(buffer_capacity=max(cfg.buffer_capacity, 2 * num_envs))  # the fused step writes every env's row
        cpu_start = time.process_time()
        result = fastdqn.train(cfg)
        cpu_s = time.process_time() - cpu_start
        return {"sps": steady_sps(result.metrics), "env_steps": result.env_steps, "wall_s": result.wall_seconds, "cpu_s": cpu_s}

    return run


def train_e2e(impl: str, ratio: str, num_envs: int, device: str, profile: Profile, out_dir: Path) -> Callable[[], dict[str, float]]:
    """A training run at a fixed replay ratio: `fastdqn.train` on the tutorial preset, or the tutorial loop."""
    r = RATIOS[ratio]
    total = profile.e2e_steps * (1 if ratio == "tutorial" else 4)
    total = max(total, profile.learning_starts + 8 * num_envs)
    train_every, gradient_steps = r.schedule(num_envs)
    runs = iter(range(1_000_000))
    if impl == "baseline":
        settings = TutorialSettings(
            total_steps=total,
            batch_size=r.batch_size,
            train_every=train_every,
            gradient_steps=gradient_steps,
            learning_starts=profile.learning_starts,
            device=device,
            log_every_steps=max(total // 8, 1),
        )

        def run_baseline() -> dict[str, float]:
            cpu_start = time.process_time()
            result: TutorialResult = run_tutorial(settings)
            cpu_s = time.process_time() - cpu_start
            sps = statistics.median(result.interval_sps[1:] or result.interval_sps)
            return {"sps": sps, "env_steps": result.env_steps, "updates": result.updates, "wall_s": result.wall_seconds, "cpu_s": cpu_s}

        return run_baseline

    def run_fastdqn() -> dict[str, float]:
        cfg = base_config(num_envs, device, total, out_dir, profile.learning_starts)
        cfg = cfg.replace(
            batch_size=r.batch_size, train_every=train_every, gradient_steps=gradient_steps, run_name=f"e2e-{ratio}-{num_envs}-{next(runs)}"
        )
        if device.startswith("cuda"):
            torch._dynamo.reset()  # a fresh agent per round compiles from cold; never hit the recompile limit
        cpu_start = time.process_time()
        with timed_updates(device) as spent:
            result = fastdqn.train(cfg)
        cpu_s = time.process_time() - cpu_start
        return {
            "cpu_s": cpu_s,
            "sps": steady_sps(result.metrics),
            "env_steps": result.env_steps,
            "updates": result.agent.updates,
            "wall_s": result.wall_seconds,
            "update_s": spent[0],
            "outside_update_fraction": 1.0 - spent[0] / result.wall_seconds,
            "compiled": float(result.agent.compiled),
        }

    return run_fastdqn
