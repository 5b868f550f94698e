"""The env interface: each backend's env step alone, and collection through `fastdqn.train` per backend.

Side by side in one run, so the issue's targets are ratios: native against Gymnasium collection at
the same num_envs, and collection against the env's own step rate. Time to solve on each backend is
`bench_solve` (bench_train.py), which runs every seed on both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from bench import runs
from bench.cases import synchronize
from bench.conftest import DEVICES, PROFILE, time_micro, time_runs
from fastdqn.envs import gymnasium_vector_env, make_envs

BACKENDS = ["gymnasium", "torch", "torch-fused"]
"""`torch-fused`: the native env with `--fuse-step on` (compiled on cpu, a CUDA graph on cuda)."""


def env_step(backend: str, num_envs: int, device: str) -> Any:
    """One vector step of CartPole-v1 with random actions, the env alone (Gymnasium's numpy step, or the native one)."""
    if backend == "gymnasium":
        envs = gymnasium_vector_env("CartPole-v1", num_envs)
        envs.reset(seed=0)
        host_actions = [np.random.default_rng(i).integers(0, 2, num_envs) for i in range(16)]
        count = iter(range(10**12))
        return lambda: envs.step(host_actions[next(count) % 16])
    native = make_envs("CartPole-v1", num_envs, backend="torch", device=device)
    native.reset(seed=0)
    actions = [torch.randint(0, 2, (num_envs,), device=device) for _ in range(16)]
    count = iter(range(10**12))

    def step() -> None:
        native.step(actions[next(count) % 16])
        synchronize(device)

    return step


SIZES = (*PROFILE.native_envs, *PROFILE.cuda_native_envs)
CROSSOVER_SIZES = (1, 4, 16, 64)
"""Env counts around `fastdqn.envs.AUTO_TORCH_MIN_ENVS`: where `--env-backend auto` switches to the native env."""


def classic_env_step(env_id: str, backend: str, num_envs: int) -> Any:
    """One vector step of `env_id` through `make_envs` on the cpu (either backend), cycling 16 action sets."""
    envs = make_envs(env_id, num_envs, backend=backend, device="cpu")
    envs.reset(seed=0)
    n_actions = envs.spaces.n_actions
    actions = [torch.randint(0, n_actions, (num_envs,), generator=torch.Generator().manual_seed(i)) for i in range(16)]
    count = iter(range(10**12))
    return lambda: envs.step(actions[next(count) % 16])


@pytest.mark.parametrize("num_envs", CROSSOVER_SIZES)
@pytest.mark.parametrize("backend", ["gymnasium", "torch"])
@pytest.mark.parametrize("env_id", ["CartPole-v1", "Acrobot-v1", "MountainCar-v0"])
def bench_env_step_crossover(benchmark: Any, env_id: str, backend: str, num_envs: int) -> None:
    """Each native env against Gymnasium's at small counts on the cpu: the crossover `auto` uses."""
    time_micro(
        benchmark, classic_env_step(env_id, backend, num_envs), iterations=5, num_envs=num_envs, what=f"{env_id} vector step, {backend}"
    )


def skip_unless_sized_for(device: str, backend: str, num_envs: int) -> None:
    if device == "cpu" and num_envs in PROFILE.cuda_native_envs:
        pytest.skip(f"{num_envs:,} envs is a GPU case")
    if backend == "gymnasium" and device != "cpu":
        pytest.skip("Gymnasium's numpy env runs on the host; its cpu row is the reference")


@pytest.mark.parametrize("num_envs", SIZES)
@pytest.mark.parametrize("backend", ["gymnasium", "torch"])
@pytest.mark.parametrize("device", DEVICES)
def bench_env_step(benchmark: Any, device: str, backend: str, num_envs: int) -> None:
    skip_unless_sized_for(device, backend, num_envs)
    fn = env_step(backend, num_envs, device)
    time_micro(benchmark, fn, iterations=1 if num_envs >= 4096 else 5, num_envs=num_envs, what=f"CartPole-v1 vector step alone, {backend}")


@pytest.mark.parametrize("num_envs", SIZES)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("device", DEVICES)
def bench_collect_backend(benchmark: Any, device: str, backend: str, num_envs: int, tmp_path: Path) -> None:
    if not (backend == "gymnasium" and device == "cuda" and num_envs in PROFILE.native_envs):  # gymnasium feeding a GPU is a fair row
        skip_unless_sized_for(device, backend, num_envs)
    what = f"fastdqn.train, no updates, CartPole-v1 {backend}: act + env step + replay write"
    time_runs(benchmark, runs.collect(num_envs, device, PROFILE, tmp_path, backend), rounds=PROFILE.e2e_rounds, what=what)
