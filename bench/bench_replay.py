"""Replay path: one vector step appended, and one batch of 256 sampled as tensors ready for the update."""

from __future__ import annotations

from typing import Any

import pytest

from bench import cases
from bench.conftest import DEVICES, PROFILE, time_micro


@pytest.mark.parametrize("num_envs", [16, 256])
@pytest.mark.parametrize("impl", ["fastdqn", "bare", "baseline"])
@pytest.mark.parametrize("device", DEVICES)
def bench_replay_extend(benchmark: Any, device: str, impl: str, num_envs: int) -> None:
    fn = cases.replay_extend(impl, num_envs, device, capacity=PROFILE.replay_rows)
    what = "bare torch ring add" if impl == "bare" else "extend"
    time_micro(benchmark, fn, iterations=2 if impl == "baseline" else 5, what=f"{what} {num_envs} CartPole rows")


@pytest.mark.parametrize("batch_size", [256])
@pytest.mark.parametrize("impl", ["tensors", "tensordict", "bare", "baseline"])
@pytest.mark.parametrize("device", DEVICES)
def bench_replay_sample(benchmark: Any, device: str, impl: str, batch_size: int) -> None:
    fn = cases.replay_sample(impl, batch_size, device, rows=PROFILE.replay_rows)
    what = {
        "tensors": "sample_tensors() NamedTuple",
        "tensordict": "sample() TensorDict",
        "bare": "bare torch ring, five tensors",
        "baseline": "deque random.sample + torch.tensor",
    }[impl]
    time_micro(benchmark, fn, iterations=1 if impl == "baseline" else 5, what=f"{what}, {PROFILE.replay_rows:,} rows held")
