"""End to end: env steps/s of `fastdqn.train` at two replay ratios against the tutorial loop; time to solve, fastdqn and SB3."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from bench import runs
from bench.conftest import DEVICES, PROFILE, time_runs
from bench.sb3_solve import sb3_missing_reason, sb3_solve_run
from bench.solve import solve_run

E2E = [("fastdqn", n) for n in PROFILE.num_envs] + [("baseline", 1)]


@pytest.mark.parametrize(("impl", "num_envs"), E2E)
@pytest.mark.parametrize("ratio", list(runs.RATIOS))
@pytest.mark.parametrize("device", DEVICES)
def bench_train_e2e(benchmark: Any, device: str, ratio: str, impl: str, num_envs: int, tmp_path: Path) -> None:
    r = runs.RATIOS[ratio]
    train_every, gradient_steps = r.schedule(num_envs)
    run = runs.train_e2e(impl, ratio, num_envs, device, PROFILE, tmp_path)
    what = f"1 update of {r.batch_size} per {r.env_steps} env step{'s' if r.env_steps > 1 else ''}: train_every={train_every}, gradient_steps={gradient_steps}"
    time_runs(benchmark, run, rounds=PROFILE.e2e_rounds, what=what)


SOLVES = [(seed, backend) for seed in PROFILE.solve_seeds for backend in ("gymnasium", "torch")]
"""Each seed on both env backends, one after the other: the native / Gymnasium ratio compares runs minutes apart at most."""


@pytest.mark.parametrize(("seed", "backend"), SOLVES)
def bench_solve(benchmark: Any, seed: int, backend: str, tmp_path: Path) -> None:
    figures: list[dict[str, Any]] = []
    what = f"`fastdqn train --quiet --seed S --env-backend {backend}`, whole process, default preset"
    benchmark.extra_info.update(unit="s", what=what)
    args = (*PROFILE.solve_args, "--env-backend", backend)
    benchmark.pedantic(lambda: figures.append(solve_run(seed, tmp_path / "runs", args)), rounds=1, iterations=1)
    if figures:
        benchmark.extra_info.update(figures[0])


SB3_SEEDS = list(PROFILE.sb3_solve_seeds) or [
    pytest.param(
        0,
        marks=pytest.mark.skip(reason=f"the {PROFILE.name} profile runs no SB3 time to solve (~100 s a seed); `make bench` runs seeds 1-3"),
    )
]


@pytest.mark.parametrize("seed", SB3_SEEDS)
def bench_solve_sb3(benchmark: Any, seed: int, tmp_path: Path) -> None:
    """Stable-Baselines3's DQN, rl-zoo's CartPole-v1 hyperparameters, to fastdqn's solve criterion; whole process."""
    reason = sb3_missing_reason()
    if reason is not None:
        pytest.skip(reason)
    threads = int(os.environ.get("FASTDQN_BENCH_THREADS", "1"))
    figures: list[dict[str, Any]] = []
    benchmark.extra_info.update(unit="s", what="`python bench/sb3_solve.py --seed S`: SB3 DQN, rl-zoo CartPole-v1 hyperparameters")

    def run() -> None:
        out = tmp_path / f"sb3-{seed}"
        figures.append(sb3_solve_run(seed, out, PROFILE.sb3_eval_every_steps, PROFILE.sb3_solve_max_steps, threads))

    benchmark.pedantic(run, rounds=1, iterations=1)
    if figures:
        benchmark.extra_info.update(figures[0])
