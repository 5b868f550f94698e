"""Aggregates over seeds as rliable reports them (the interquartile mean and a 95% bootstrap interval),
and the median time of a call for the bench scripts that time without pytest-benchmark."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence

import numpy as np


def median_seconds(fn: Callable[[], object], repeats: int = 7, inner: int = 20, warmup: int = 3) -> float:
    """Seconds per call of `fn`: the median over `repeats` rounds of `inner` calls each, after `warmup` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(inner):
            fn()
        times.append((time.perf_counter() - start) / inner)
    return statistics.median(times)


def iqm(values: Sequence[float]) -> float:
    """Mean of the middle half: `floor(n/4)` values dropped at each end (scipy's trim_mean(x, 0.25))."""
    ordered = np.sort(np.asarray(values, dtype=np.float64))
    cut = len(ordered) // 4
    return float(ordered[cut : len(ordered) - cut].mean())


def bootstrap_ci(values: Sequence[float], resamples: int = 2000, level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile interval of the IQM over `resamples` resamplings of the seeds with replacement."""
    data = np.asarray(values, dtype=np.float64)
    if len(data) < 2:
        return float(data.mean()), float(data.mean())
    rng = np.random.default_rng(seed)
    draws = np.sort(data[rng.integers(0, len(data), size=(resamples, len(data)))], axis=1)
    cut = len(data) // 4
    means = draws[:, cut : len(data) - cut].mean(axis=1)
    low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def summary(values: Sequence[float]) -> dict[str, float]:
    low, high = bootstrap_ci(values)
    return {"iqm": iqm(values), "ci_low": low, "ci_high": high}


def fmt(stats: dict[str, float]) -> str:
    """`-81.2 [-85.0, -77.9]`."""
    return f"{stats['iqm']:.1f} [{stats['ci_low']:.1f}, {stats['ci_high']:.1f}]"
