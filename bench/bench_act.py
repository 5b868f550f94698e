"""Acting (one batched epsilon-greedy forward) and collection without updates (act + env step + extend)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench import cases, runs
from bench.conftest import DEVICES, PROFILE, time_micro, time_runs


@pytest.mark.parametrize("num_obs", PROFILE.act_sizes)
@pytest.mark.parametrize("device", DEVICES)
def bench_act(benchmark: Any, device: str, num_obs: int) -> None:
    time_micro(
        benchmark, cases.act(num_obs, device), iterations=1 if num_obs >= 4096 else 5, what=f"act on {num_obs} obs, default MLP 2x64"
    )


@pytest.mark.parametrize("num_envs", PROFILE.num_envs)
@pytest.mark.parametrize("device", DEVICES)
def bench_collect(benchmark: Any, device: str, num_envs: int, tmp_path: Path) -> None:
    run = runs.collect(num_envs, device, PROFILE, tmp_path)
    time_runs(benchmark, run, rounds=PROFILE.e2e_rounds, what="fastdqn.train, default preset, no updates: act + CartPole step + extend")
