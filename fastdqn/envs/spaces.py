"""What DQN needs of an env's spaces, and the registry look-up: the leaf every env module builds on."""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.envs.registration import EnvSpec

from fastdqn.config import ConfigError


class EnvError(ConfigError):
    """The env cannot be made, or its spaces do not fit DQN; the message says why and what to do."""


@dataclass(frozen=True)
class EnvSpaces:
    obs_shape: tuple[int, ...]
    obs_dtype: torch.dtype
    n_actions: int


def _close_names(env_id: str) -> str:
    names = difflib.get_close_matches(env_id, list(gym.registry), n=3, cutoff=0.6)
    return f" Did you mean {', '.join(names)}?" if names else " `python -c 'import gymnasium; gymnasium.pprint_registry()'` lists them."


MAX_STEP_REWARD = {"CartPole-v0": 1.0, "CartPole-v1": 1.0, "Acrobot-v1": 0.0, "MountainCar-v0": -1.0}
"""The most one step can pay, for the envs where that is known (Gymnasium's spaces do not say)."""


def first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else "(no message)"


def is_atari(env_id: str) -> bool:
    """True for ALE ids (`ALE/Pong-v5`, or `module:ALE/Pong-v5`)."""
    return env_id.rpartition(":")[2].startswith("ALE/")


def find_spec(env_id: str) -> EnvSpec:
    """The registered spec of `env_id`; `module:Env-v0` imports `module` first, as Gymnasium does."""
    module, _, name = env_id.rpartition(":")
    if module:
        try:
            importlib.import_module(module)
        except ImportError as error:
            raise EnvError(f"env id {env_id!r}: could not import {module!r} to register it ({error})") from None
        except Exception as error:  # the module's own code failed: name it, not a traceback into it
            raise EnvError(
                f"env id {env_id!r}: importing {module!r} raised {type(error).__name__}: {first_line(error)}; fix that module"
            ) from None
    try:
        return gym.spec(name)
    except gym.error.Error as error:
        raise EnvError(f"unknown env id {env_id!r}: {error}.{_close_names(name)}") from None


def check_spaces(env_id: str, observation_space: gym.Space[Any], action_space: gym.Space[Any]) -> EnvSpaces:
    if not isinstance(action_space, gym.spaces.Discrete):
        raise EnvError(
            f"{env_id} has a {type(action_space).__name__} action space; DQN needs a Discrete action space "
            f"(pick a discrete env such as CartPole-v1, or discretise the actions with a wrapper)"
        )
    if int(action_space.start) != 0:
        raise EnvError(f"{env_id}: Discrete action space starts at {action_space.start}; fastdqn expects actions 0..n-1")
    if not isinstance(observation_space, gym.spaces.Box):
        raise EnvError(
            f"{env_id} has a {type(observation_space).__name__} observation space; fastdqn needs a Box "
            f"(flatten Dict/Tuple observations with gymnasium.wrappers.FlattenObservation)"
        )
    obs_dtype = torch.from_numpy(np.zeros(0, dtype=observation_space.dtype)).dtype
    return EnvSpaces(tuple(observation_space.shape), obs_dtype, int(action_space.n))
