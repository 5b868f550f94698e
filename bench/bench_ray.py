"""Ape-X on Ray (`train --actors N`): env steps/s collected by 1 and 2 actors on Acrobot-v1, and the learner's updates/s.

Beside them, the single-process loop at the same replay ratio (8: one update of 64 per 8 env steps).
Figures are medians over the log intervals after the first (Ray's start-up and the actors' imports
fall in the first). Each actor takes one core (fewer where the machine has fewer than N + 1), so on a
machine with more cores the same cases give the scaling curve; `cores` records what there was.
Runs only with the `ray` extra installed.
"""

from __future__ import annotations

import csv
import itertools
import os
import statistics
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.conftest import PROFILE, time_runs
from fastdqn.config import Config

IMPLS = ["single", "actors-1", "actors-2"]
STEPS = {"full": 40_000, "quick": 12_000, "tiny": 2_048}


@pytest.fixture(scope="module")
def ray_runtime() -> Iterator[Any]:
    ray = pytest.importorskip("ray", reason='the ray extra is not installed: pip install -e ".[ray]"')
    if not ray.is_initialized():
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    yield ray
    ray.shutdown()


def acrobot(out_dir: Path, actors: int, run: int) -> Config:
    total = STEPS.get(PROFILE.name, STEPS["quick"])
    return Config(
        env_id="Acrobot-v1",
        num_envs=8,
        total_steps=total,
        learning_starts=1_000,
        batch_size=64,
        train_every=1,
        gradient_steps=1,
        eval_every_steps=0,
        stop_at_return=None,
        device="cpu",
        save_plot=False,
        checkpoint_every_steps=0,
        save_buffer=False,
        log_every_steps=max(total // 10, 256),
        actors=actors,
        chunk_steps=256,
        out_dir=str(out_dir),
        run_name=f"acrobot-{actors}-{run}",
    )


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        rows = list(csv.DictReader(f))
    return rows[1:] or rows  # the first interval holds the start-up


@pytest.mark.parametrize("impl", IMPLS)
def bench_ray_collect(benchmark: Any, impl: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    actors = 0 if impl == "single" else int(impl.split("-")[1])
    runs = iter(range(1_000))
    if actors:
        request.getfixturevalue("ray_runtime")

    def run() -> dict[str, float]:
        cfg = acrobot(tmp_path, actors, next(runs))
        if actors:
            from fastdqn.actor_source import train_distributed

            result = train_distributed(cfg)
            rows = _rows(result.run_dir / "actors.csv")
            per_actor = [statistics.median(float(r[f"actor{i}_sps"]) for r in rows) for i in range(actors)]
            return {
                "sps": statistics.median(sum(float(r[f"actor{i}_sps"]) for i in range(actors)) for r in rows),
                "actor_sps": per_actor[0] if actors == 1 else min(per_actor),
                "updates_per_s": statistics.median(float(r["updates_per_s"]) for r in rows),
                "learner_wait_frac": statistics.median(float(r["learner_wait_frac"]) for r in rows),
                "queue_depth": statistics.median(float(r["queue_depth"]) for r in rows),
                "wall_s": result.wall_seconds,
            }
        import fastdqn

        result = fastdqn.train(cfg)
        rows = _rows(result.run_dir / "metrics.csv")
        steps = [(float(r["wall_s"]), int(r["updates"])) for r in rows]
        rates = [(u1 - u0) / (t1 - t0) for (t0, u0), (t1, u1) in itertools.pairwise(steps) if t1 > t0]
        return {
            "sps": statistics.median(float(r["sps"]) for r in rows),
            "updates_per_s": statistics.median(rates) if rates else 0.0,
            "wall_s": result.wall_seconds,
        }

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else -1.0
    what = f"Acrobot-v1, 8 envs per actor, replay ratio 8, {actors or 'no'} actors; cores {os.cpu_count()}, load {load:.2f}"
    time_runs(benchmark, run, rounds=1 if PROFILE.name != "full" else 2, what=what, cores=os.cpu_count(), actors=actors)
