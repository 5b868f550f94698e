"""Replay path: one vector step appended, and one batch of 256 sampled as tensors ready for the update."""

from __future__ import annotations

from typing import Any

import pytest

from bench import cases
from bench.baselines import extra_missing
from bench.conftest import DEVICES, PROFILE, time_micro


@pytest.mark.parametrize("num_envs", [16, 256])
@pytest.mark.parametrize("impl", ["fastdqn", "bare", "sb3", "baseline"])
@pytest.mark.parametrize("device", DEVICES)
def bench_replay_extend(benchmark: Any, device: str, impl: str, num_envs: int) -> None:
    skip_without_peer(impl)
    fn = cases.replay_extend(impl, num_envs, device, capacity=PROFILE.replay_rows)
    what = {"bare": "bare torch ring add", "sb3": "SB3 ReplayBuffer.add"}.get(impl, "extend")
    time_micro(benchmark, fn, iterations=2 if impl == "baseline" else 5, what=f"{what} {num_envs} CartPole rows")


@pytest.mark.parametrize("batch_size", [256])
@pytest.mark.parametrize("impl", ["tensors", "tensordict", "bare", "sb3", "baseline"])
@pytest.mark.parametrize("device", DEVICES)
def bench_replay_sample(benchmark: Any, device: str, impl: str, batch_size: int) -> None:
    skip_without_peer(impl)
    fn = cases.replay_sample(impl, batch_size, device, rows=PROFILE.replay_rows)
    what = {
        "tensors": "sample_tensors() NamedTuple",
        "tensordict": "sample() TensorDict",
        "bare": "bare torch ring, five tensors",
        "sb3": "SB3 ReplayBuffer.sample",
        "baseline": "deque random.sample + torch.tensor",
    }[impl]
    time_micro(benchmark, fn, iterations=1 if impl == "baseline" else 5, what=f"{what}, {PROFILE.replay_rows:,} rows held")


@pytest.mark.parametrize("impl", ["fastdqn", "bare", "torchrl"])
@pytest.mark.parametrize("device", DEVICES)
def bench_replay_path(benchmark: Any, device: str, impl: str) -> None:
    skip_without_peer(impl)
    fn = cases.replay_path(impl, device, capacity=PROFILE.replay_rows)
    what = {
        "fastdqn": "ReplayBuffer.extend + sample_tensors",
        "bare": "bare five-tensor ring add + sample",
        "torchrl": "TorchRL ReplayBuffer(LazyTensorStorage) extend + sample",
    }[impl]
    time_micro(benchmark, fn, iterations=5, what=f"{what}: one 16-env step in, 256 rows out, K = 1")


def skip_without_peer(impl: str) -> None:
    """The sb3 and torchrl rows need their library (the `bench` extra); without it they are skipped, said why."""
    module = {"sb3": "stable_baselines3", "torchrl": "torchrl"}.get(impl)
    reason = None if module is None else extra_missing(module)
    if reason is not None:
        pytest.skip(reason)
