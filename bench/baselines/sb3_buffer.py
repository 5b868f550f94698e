"""Stable-Baselines3's ReplayBuffer on the same CartPole rows, for the replay-path comparison.

Optional: `make bench` installs stable-baselines3 (the `bench` extra); without it the sb3 rows are
reported as skipped. SB3 keeps numpy arrays of shape (capacity / n_envs, n_envs, ...) and converts a
sample to torch tensors on the device, which is the "tensors ready for the update" fastdqn returns.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def sb3_buffer(capacity: int, num_envs: int, device: str) -> Any:
    """An SB3 ReplayBuffer for CartPole rows from `num_envs` envs holding `capacity` transitions in all."""
    import gymnasium as gym
    from stable_baselines3.common.buffers import ReplayBuffer

    obs_space = gym.spaces.Box(-np.inf, np.inf, (4,), np.float32)
    return ReplayBuffer(capacity, obs_space, gym.spaces.Discrete(2), device=device, n_envs=num_envs)
