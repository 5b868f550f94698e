"""Envs as the training loop sees them: one `DeviceVectorEnv` interface, torch-native or Gymnasium.

`make_envs` is the entry point. `backend="torch"` runs CartPole-v1, Acrobot-v1 and MountainCar-v0
as batched tensors on the training device (classic.py); `backend="gymnasium"` wraps any Gymnasium
vector env (gymnasium.py); `auto` picks torch for those ids from `AUTO_TORCH_MIN_ENVS[env_id]` envs up.
"""

from __future__ import annotations

import torch

from fastdqn.envs.base import DeviceVectorEnv, EnvStep
from fastdqn.envs.classic import NATIVE_ENVS, TorchVectorEnv
from fastdqn.envs.gymnasium import GymnasiumEnv, env_spaces, gymnasium_vector_env, valid_rows
from fastdqn.envs.spaces import EnvError, EnvSpaces, check_spaces, find_spec, is_atari

__all__ = [
    "AUTO_TORCH_MIN_ENVS",
    "NATIVE_ENVS",
    "DeviceVectorEnv",
    "EnvError",
    "EnvSpaces",
    "EnvStep",
    "GymnasiumEnv",
    "TorchVectorEnv",
    "check_spaces",
    "env_spaces",
    "find_spec",
    "gymnasium_vector_env",
    "is_atari",
    "make_envs",
    "resolve_backend",
    "valid_rows",
]

AUTO_TORCH_MIN_ENVS: dict[str, int] = {"CartPole-v1": 256, "Acrobot-v1": 16, "MountainCar-v0": 4}
"""`--env-backend auto` runs an id's native env from this many envs up: where its step overtakes
Gymnasium's (`bench_env_step_crossover` in bench/bench_envs.py, CPU, one thread). Gymnasium's CartPole
is numpy-vectorized and keeps up with the native one at any count on a CPU; its Acrobot and
MountainCar step each env in Python, so their cost grows with N while a native step's barely does."""


def resolve_backend(env_id: str, num_envs: int, backend: str) -> str:
    """`torch` or `gymnasium` for `backend` in auto / torch / gymnasium; torch for an id with no native env is an error."""
    if backend == "auto":
        return "torch" if env_id in NATIVE_ENVS and num_envs >= AUTO_TORCH_MIN_ENVS[env_id] else "gymnasium"
    if backend == "torch" and env_id not in NATIVE_ENVS:
        raise EnvError(
            f"--env-backend torch has no native {env_id}; it runs {', '.join(NATIVE_ENVS)} (use --env-backend gymnasium for others)"
        )
    if backend not in ("torch", "gymnasium"):
        raise EnvError(f"env_backend={backend!r} is not one of auto, torch, gymnasium")
    return backend


def make_envs(
    env_id: str,
    num_envs: int,
    backend: str = "gymnasium",
    device: torch.device | str = "cpu",
    mode: str = "auto",
    training: bool = True,
) -> DeviceVectorEnv:
    """`num_envs` copies of `env_id` behind the `DeviceVectorEnv` interface, on `device`.

    Args:
        backend: `gymnasium`, `torch` (a native env; CartPole-v1, Acrobot-v1, MountainCar-v0) or `auto`.
        mode: Gymnasium's vectorization: `auto` (the env's own vectorized class when it has one, else
            `sync`), `vector_entry_point`, `sync` or `async`.
        training: False for evaluation envs; ALE ids then keep lives and raw rewards (atari.py).
    """
    if resolve_backend(env_id, num_envs, backend) == "torch":
        return NATIVE_ENVS[env_id](num_envs, device)
    return GymnasiumEnv(gymnasium_vector_env(env_id, num_envs, mode, training), env_id, device)
