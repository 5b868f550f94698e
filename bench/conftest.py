"""Fixtures shared by the `bench_*.py` cases: the profile, fixed threads, the device list, the timing helpers."""

from __future__ import annotations

import os
import statistics
from collections.abc import Callable
from typing import Any

import pytest
import torch

from bench.cases import Profile, cuda_skip_reason, profile_from_env

PROFILE = profile_from_env()
_cuda_reason = cuda_skip_reason()
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(_cuda_reason is not None, reason=_cuda_reason or ""))]


@pytest.fixture(scope="session")
def profile() -> Profile:
    return PROFILE


@pytest.fixture(autouse=True)
def _fixed_threads() -> None:
    """Every case runs on the same intra-op thread count (run.py records it); 1 is fastdqn's default."""
    torch.set_num_threads(int(os.environ.get("FASTDQN_BENCH_THREADS", "1")))


def time_micro(benchmark: Any, fn: Callable[[], object], iterations: int, **info: Any) -> None:
    """Median over `PROFILE.rounds` rounds of `iterations` calls each, after warm-up rounds.

    Rounds are kept short (well under a scheduler time slice) so that on a shared machine a round the
    OS preempts is an outlier in the distribution instead of a bias in every round.
    """
    benchmark.extra_info.update(unit="s", **info)
    benchmark.pedantic(fn, rounds=PROFILE.rounds, iterations=iterations, warmup_rounds=PROFILE.warmup_rounds)


def time_runs(benchmark: Any, run: Callable[[], dict[str, float]], rounds: int, **info: Any) -> list[dict[str, float]]:
    """Whole runs, one per round; each round's own figures (steady env steps/s, ...) go into extra_info."""
    figures: list[dict[str, float]] = []
    benchmark.extra_info.update(unit="sps", **info)
    benchmark.pedantic(lambda: figures.append(run()), rounds=rounds, iterations=1, warmup_rounds=0)
    if figures:  # empty under --benchmark-disable, which runs `run` outside the wrapper's list
        benchmark.extra_info["rounds"] = figures
        benchmark.extra_info["sps_median"] = statistics.median(f["sps"] for f in figures)
    return figures
