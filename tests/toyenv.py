"""Tiny deterministic envs for tests, registered on import (use ids like `toyenv:Counter-v0`).

`Counter-v0` observes `[episode, t, env_offset]`: every transition can be traced back to the
episode and step it came from. Episodes with an even `episode + offset` terminate after
`2 + (episode + offset) % 3` steps; odd ones run until the TimeLimit truncates them at 6 steps.
Each step pays reward `t` (the step's index within the episode, from 1), so returns are checkable.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

TRUNCATE_AT = 6


class CounterEnv(gym.Env[np.ndarray, np.int64]):
    def __init__(self) -> None:
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, shape=(3,), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self.offset = 0
        self.episode = -1
        self.t = 0

    def _obs(self) -> np.ndarray:
        return np.array([self.episode, self.t, self.offset], dtype=np.float32)

    def terminal_step(self) -> int | None:
        k = self.episode + self.offset
        return 2 + k % 3 if k % 2 == 0 else None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        if seed is not None:
            self.offset = seed % 5
            self.episode = -1
        self.episode += 1
        self.t = 0
        return self._obs(), {}

    def step(self, action: np.int64) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        self.t += 1
        terminated = self.t == self.terminal_step()
        return self._obs(), float(self.t), terminated, False, {}


class ContinuousEnv(CounterEnv):
    def __init__(self) -> None:
        super().__init__()
        self.action_space = gym.spaces.Box(-1, 1, shape=(1,))  # type: ignore[assignment]


class DictObsEnv(CounterEnv):
    def __init__(self) -> None:
        super().__init__()
        self.observation_space = gym.spaces.Dict({"x": gym.spaces.Box(0, 1, shape=(2,))})  # type: ignore[assignment]


class ImageEnv(CounterEnv):
    def __init__(self) -> None:
        super().__init__()
        self.observation_space = gym.spaces.Box(0, 255, shape=(4, 8, 8), dtype=np.uint8)  # type: ignore[assignment]

    def _obs(self) -> np.ndarray:
        return np.full((4, 8, 8), (self.episode * 10 + self.t) % 256, dtype=np.uint8)


class ExplodingEnv(CounterEnv):
    def step(self, action: np.int64) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self.t >= 3:
            raise RuntimeError("simulator diverged")
        return super().step(action)


gym.register("Counter-v0", entry_point=CounterEnv, max_episode_steps=TRUNCATE_AT)
gym.register("ContinuousCounter-v0", entry_point=ContinuousEnv, max_episode_steps=TRUNCATE_AT)
gym.register("DictCounter-v0", entry_point=DictObsEnv, max_episode_steps=TRUNCATE_AT)
gym.register("ImageCounter-v0", entry_point=ImageEnv, max_episode_steps=TRUNCATE_AT)
gym.register("ExplodingCounter-v0", entry_point=ExplodingEnv, max_episode_steps=TRUNCATE_AT)
