"""Envs that misbehave on purpose, registered on import (ids like `nonfinite_envs:NaNReward-v0`).

Both are `toyenv`'s Counter env until its third episode, so a run has written checkpoints before
the first non-finite value arrives.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from toyenv import TRUNCATE_AT, CounterEnv

BAD_FROM_EPISODE = 12


class NaNRewardEnv(CounterEnv):
    def step(self, action: np.int64) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = super().step(action)
        return obs, float("nan") if self.episode >= BAD_FROM_EPISODE else reward, terminated, truncated, info


class InfObsEnv(CounterEnv):
    def _obs(self) -> np.ndarray:
        obs = super()._obs()
        if self.episode >= BAD_FROM_EPISODE:
            obs[1] = np.inf
        return obs


gym.register("NaNReward-v0", entry_point=NaNRewardEnv, max_episode_steps=TRUNCATE_AT)
gym.register("InfObs-v0", entry_point=InfObsEnv, max_episode_steps=TRUNCATE_AT)
