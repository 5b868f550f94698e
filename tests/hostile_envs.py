"""Envs that fail the way user code does, registered on import (`hostile_envs:ResetRaises-v0`, `hostile_envs:InitRaises-v0`)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np


class ResetRaises(gym.Env[np.ndarray, np.int64]):
    def __init__(self) -> None:
        self.observation_space = gym.spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        raise RuntimeError("the simulator lost its connection")


class InitRaises(ResetRaises):
    def __init__(self) -> None:
        raise ValueError("no licence file found")


gym.register("ResetRaises-v0", entry_point=ResetRaises, max_episode_steps=10)
gym.register("InitRaises-v0", entry_point=InitRaises, max_episode_steps=10)
