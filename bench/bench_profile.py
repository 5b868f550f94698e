"""Where the wall time of `fastdqn train --seed 1` goes, phase by phase (`bench/profile_solve.py` in a fresh process)."""

from __future__ import annotations

from typing import Any

from bench.conftest import PROFILE
from bench.profile_solve import profile_run


def bench_profile_solve(benchmark: Any) -> None:
    figures: list[dict[str, Any]] = []
    benchmark.extra_info.update(unit="s", what="`fastdqn train --quiet --seed 1` in-process, public functions wrapped")
    benchmark.pedantic(lambda: figures.append(profile_run(1, PROFILE.solve_args)), rounds=1, iterations=1)
    if figures:
        benchmark.extra_info.update(figures[0])
