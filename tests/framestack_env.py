"""A tiny pixel env for frame-stack tests, registered on import (ids like `framestack_env:Frames-v0`;
`Frames84-v0` is the same at 84 x 84, the Nature CNN's input).

Each frame is random noise with the episode number, the step and the env's seed drawn into its
first pixels, so every frame differs from every other and a wrong stack cannot pass as right.
Every `FREEZE`-th step repeats the previous frame exactly, as a static screen does, to exercise
identical neighbours. Episodes terminate after 1 to 7 steps or run into the TimeLimit at 9.
`Frames-v0` stacks 4 frames and repeats the first frame at a reset (Gymnasium's default, like
DeepMind's FrameStack); `ZeroPadFrames-v0` pads with zeros at a reset, like ale-py's vector env;
`PlainFrames-v0` is `Frames-v0` stacking in the env itself, so its state is plain data.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.wrappers import FrameStackObservation

SIZE = 6
TRUNCATE_AT = 9
FREEZE = 5


class FrameCounterEnv(gym.Env[np.ndarray, np.int64]):
    def __init__(self, size: int = SIZE) -> None:
        self.size = size
        self.observation_space = gym.spaces.Box(0, 255, shape=(size, size), dtype=np.uint8)
        self.action_space = gym.spaces.Discrete(3)
        self.rng = np.random.default_rng(0)
        self.episode = -1
        self.t = 0
        self.offset = 0
        self.length = 1
        self.frame = np.zeros((size, size), dtype=np.uint8)

    def _draw(self) -> np.ndarray:
        if self.t > 0 and self.t % FREEZE == 0:
            return self.frame  # a static screen: the same pixels again
        frame = self.rng.integers(0, 256, (self.size, self.size), dtype=np.uint8)
        frame[0, :3] = (self.episode % 256, self.t, self.offset)
        self.frame = frame
        return frame

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        if seed is not None:
            self.rng = np.random.default_rng(seed)
            self.offset = seed % 256
        self.episode += 1
        self.t = 0
        self.length = int(self.rng.integers(1, 8)) if self.rng.random() < 0.7 else TRUNCATE_AT + 1
        return self._draw().copy(), {}

    def step(self, action: np.int64) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        self.t += 1
        return self._draw().copy(), float(action), self.t >= self.length, False, {}


class PlainFramesEnv(FrameCounterEnv):
    """`Frames-v0` with the 4-frame stack kept in the env itself, as one array: its whole state is
    plain data (ints, arrays, numpy generators), as a classic-control env's is, so it opts in to exact resume."""

    fastdqn_plain_state = True

    def __init__(self) -> None:
        super().__init__()
        self.observation_space = gym.spaces.Box(0, 255, shape=(4, self.size, self.size), dtype=np.uint8)
        self.stack = np.zeros((4, self.size, self.size), dtype=np.uint8)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        frame, info = super().reset(seed=seed, options=options)
        self.stack[:] = frame  # the first frame repeated, as FrameStackObservation(padding_type="reset") does
        return self.stack.copy(), info

    def step(self, action: np.int64) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        frame, reward, terminated, truncated, info = super().step(action)
        self.stack = np.concatenate([self.stack[1:], frame[None]])
        return self.stack.copy(), reward, terminated, truncated, info


def _stacked(padding: str, size: int = SIZE) -> gym.Env[np.ndarray, np.int64]:
    return FrameStackObservation(gym.wrappers.TimeLimit(FrameCounterEnv(size), TRUNCATE_AT), 4, padding_type=padding)


gym.register("Frames-v0", entry_point=lambda: _stacked("reset"))
gym.register("ZeroPadFrames-v0", entry_point=lambda: _stacked("zero"))
gym.register("PlainFrames-v0", entry_point=PlainFramesEnv, max_episode_steps=TRUNCATE_AT)
gym.register("Frames84-v0", entry_point=lambda: _stacked("reset", 84))  # (4, 84, 84): what the Nature CNN takes
