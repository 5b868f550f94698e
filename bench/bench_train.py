"""End to end: env steps/s of `fastdqn.train` at two replay ratios against the tutorial loop; time to solve."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench import runs
from bench.conftest import DEVICES, PROFILE, time_runs
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


@pytest.mark.parametrize("seed", PROFILE.solve_seeds)
def bench_solve(benchmark: Any, seed: int, tmp_path: Path) -> None:
    figures: list[dict[str, Any]] = []
    benchmark.extra_info.update(unit="s", what="`fastdqn train --quiet --seed S`, whole process, default preset")
    benchmark.pedantic(lambda: figures.append(solve_run(seed, tmp_path / "runs", PROFILE.solve_args)), rounds=1, iterations=1)
    if figures:
        benchmark.extra_info.update(figures[0])
