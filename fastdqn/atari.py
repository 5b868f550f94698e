"""Atari: ALE games as DQN sees them (Mnih et al. 2015), behind any `ALE/...` env id.

Every `ALE/<Game>-v5` id gets this stack, whatever the preset: up to 30 no-op starts, FIRE at
reset where the game has it, each action repeated for 4 frames with a max over the last two,
84x84 grayscale (INTER_AREA), a 4-frame stack, and an episode cap of 27k steps (108k frames).
Sticky actions (`repeat_action_probability`) and the action set follow the id's registration
(v5: 0.25, minimal set). Training envs also end an episode on a life loss and clip rewards to
[-1, 1]; evaluation envs (`training=False`) play whole games and report the raw game score.

Two implementations, picked by `vectorization_mode`:
- `auto` / `vector_entry_point`: ale-py's C++ `AtariVectorEnv`, which steps, preprocesses and
  stacks all envs in native threads. Its stack is zero-padded at a game reset and keeps rolling
  across a life loss; `FrameStorage` stores both exactly.
- `sync` / `async`: Gymnasium's `AtariPreprocessing` + `EpisodicLife` + `ClipReward` +
  `FrameStackObservation` in a Python vector env (the stack repeats the first frame at a reset).

Both autoreset in NEXT_STEP mode, whose reset step `fastdqn.envs.GymnasiumEnv` marks as no transition. A life loss is an
episode end for the learner but not for the game: the step after it is the "reset" step, which
the train loop drops. `LifeLossReset` (ale-py path) and `EpisodicLife` (Gymnasium path) make that
step a NOOP with reward 0, as DeepMind's EpisodicLifeEnv does, so no real action goes unrecorded.

Speed, Pong-v5, random actions, env steps/s (x4 for emulator frames/s), median of 3 rounds
interleaved across the modes; this 2-core CPU was shared with other jobs, so rounds spread by up
to 2x (ale-py 0.12.1, gymnasium 1.4.0, numpy 2.4):

| envs | ale-py AtariVectorEnv (2 threads) | Gymnasium sync | Gymnasium async |
|-----:|----------------------------------:|---------------:|----------------:|
| 1    | 1,104 (4.4k frames/s)             | 830            | -               |
| 8    | 1,811 (7.2k frames/s)             | 854            | 574             |
| 16   | 2,103 (8.4k frames/s)             | 936            | 680             |

so `auto` uses ale-py's vector env.

Training on that CPU (Pong, `--preset atari` with a 100k buffer, torch on 1 thread, env steps/s
from metrics.csv): while collecting (no updates yet) 150-220 / 210-300 / 550-890 env steps/s at
1 / 8 / 16 envs, where each vector step splits into acting (the CNN forward, ~1.4 ms per env),
the env step and `FrameStorage.extend` (1.0 / 2.2 / 2.8 ms); once learning, 28-58 env steps/s,
bound by the update (batch 32, Nature CNN, ~80-130 ms on one thread) at one update per 4 steps.
Atari learning curves need a GPU.
"""

from __future__ import annotations

import os
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv, VectorWrapper

from fastdqn.envs.spaces import EnvError, find_spec

FRAME_STACK = 4
FRAME_SKIP = 4
NOOP_MAX = 30
MAX_EPISODE_STEPS = 27_000  # 108k emulator frames, the 30-minute cap of Machado et al. 2018
NOOP = 0  # action 0 is NOOP in every ALE action set, minimal or full


def _import_ale() -> Any:
    try:
        import ale_py
    except ImportError:
        raise EnvError("ALE/... envs need ale-py and OpenCV: pip install 'fastdqn[atari]'") from None
    gym.register_envs(ale_py)
    return ale_py


class LifeLossReset(VectorWrapper):
    """Makes the step after a life-loss terminal a reset step: NOOP, reward 0.

    ale-py's `life_loss_info` reports `terminated` on a life loss but keeps playing, so the next
    step would apply the agent's action in a step the train loop drops as an autoreset step.
    """

    def __init__(self, env: VectorEnv):
        super().__init__(env)
        self.prev_done = np.zeros(env.num_envs, dtype=bool)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        self.prev_done[:] = False
        return self.env.reset(seed=seed, options=options)

    def step(self, actions: Any) -> tuple[Any, Any, Any, Any, dict[str, Any]]:
        actions = np.where(self.prev_done, NOOP, actions).astype(np.int64)
        obs, rewards, terminated, truncated, info = self.env.step(actions)
        rewards = np.where(self.prev_done, 0, rewards)
        self.prev_done = terminated | truncated
        return obs, rewards, terminated, truncated, info


class EpisodicLife(gym.Wrapper[Any, Any, Any, Any]):
    """One env: a life loss ends the episode; the reset after it is a NOOP step, not a new game."""

    def __init__(self, env: gym.Env[Any, Any]):
        super().__init__(env)
        self.lives = 0
        self.game_over = True

    def step(self, action: Any) -> tuple[Any, Any, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.game_over = terminated or truncated
        lives = int(info["lives"])
        terminated = terminated or 0 < lives < self.lives
        self.lives = lives
        return obs, reward, terminated, truncated, info

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        if self.game_over or seed is not None:
            obs, info = self.env.reset(seed=seed, options=options)
            self.game_over = False
        else:
            obs, _, _, _, info = self.env.step(NOOP)
        self.lives = int(info["lives"])
        return obs, info


def _gymnasium_wrappers(training: bool) -> list[Any]:
    from gymnasium.wrappers import AtariPreprocessing, ClipReward, FrameStackObservation

    def preprocess(env: gym.Env[Any, Any]) -> gym.Env[Any, Any]:
        return AtariPreprocessing(env, noop_max=NOOP_MAX, frame_skip=FRAME_SKIP, screen_size=84, grayscale_obs=True)

    wrappers: list[Any] = [preprocess]
    if training:
        wrappers += [EpisodicLife, lambda env: ClipReward(env, -1.0, 1.0)]
    return [*wrappers, lambda env: FrameStackObservation(env, FRAME_STACK)]


def make_atari_envs(env_id: str, num_envs: int, mode: str = "auto", training: bool = True) -> VectorEnv:
    """A NEXT_STEP-autoreset vector env of `num_envs` preprocessed ALE games.

    Observations are (num_envs, 4, 84, 84) uint8. `training` adds terminal-on-life-loss and
    reward clipping; without it each episode is a whole game scored in raw points.
    """
    _import_ale()
    spec = find_spec(env_id)
    game = spec.kwargs.get("game")
    if game is None:
        raise EnvError(f"{env_id} is not an ALE game id (its registration names no game)")
    sticky = float(spec.kwargs.get("repeat_action_probability", 0.25))
    full_action_space = bool(spec.kwargs.get("full_action_space", False))
    try:
        if mode in ("auto", "vector_entry_point"):
            from ale_py.vector_env import AtariVectorEnv

            envs: VectorEnv = AtariVectorEnv(
                game,
                num_envs,
                num_threads=min(num_envs, os.cpu_count() or 1),
                repeat_action_probability=sticky,
                full_action_space=full_action_space,
                autoreset_mode=AutoresetMode.NEXT_STEP,
                img_height=84,
                img_width=84,
                grayscale=True,
                stack_num=FRAME_STACK,
                frameskip=FRAME_SKIP,
                maxpool=True,
                noop_max=NOOP_MAX,
                episodic_life=False,  # True would restart the whole game at every life loss
                life_loss_info=training,
                reward_clipping=training,
                max_num_frames_per_episode=MAX_EPISODE_STEPS,  # counted in agent steps by the vector env
            )
            return LifeLossReset(envs) if training else envs
        return gym.make_vec(
            env_id,
            num_envs=num_envs,
            vectorization_mode=mode,
            vector_kwargs={"autoreset_mode": AutoresetMode.NEXT_STEP},
            wrappers=_gymnasium_wrappers(training),
            frameskip=1,  # AtariPreprocessing does the skip and the max-pool
            repeat_action_probability=sticky,
            full_action_space=full_action_space,
            max_num_frames_per_episode=MAX_EPISODE_STEPS * FRAME_SKIP,
        )
    except (gym.error.Error, ImportError, RuntimeError) as error:
        raise EnvError(f"env id {env_id!r} could not be made: {error}") from None
