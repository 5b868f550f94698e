"""Vector envs: construction, the space checks DQN needs, and the NEXT_STEP autoreset mask.

Gymnasium 1.x vector envs autoreset in NEXT_STEP mode: the step after an episode ends returns the
first observation of the next episode, ignores the action, and reports reward 0. That step is not a
transition, so `valid_rows(prev_done)` drops it before anything reaches the buffer. The step that
ended the episode is a real transition whose `obs` is the true final observation: `terminated`
zeroes its bootstrap, `truncated` does not.
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.envs.registration import EnvSpec
from gymnasium.vector import AutoresetMode, VectorEnv

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


def find_spec(env_id: str) -> EnvSpec:
    """The registered spec of `env_id`; `module:Env-v0` imports `module` first, as Gymnasium does."""
    module, _, name = env_id.rpartition(":")
    if module:
        try:
            importlib.import_module(module)
        except ImportError as error:
            raise EnvError(f"env id {env_id!r}: could not import {module!r} to register it ({error})") from None
    try:
        return gym.spec(name)
    except gym.error.Error as error:
        raise EnvError(f"unknown env id {env_id!r}: {error}.{_close_names(name)}") from None


def resolve_vectorization_mode(spec: EnvSpec, mode: str) -> str:
    if mode != "auto":
        return mode
    return "vector_entry_point" if spec.vector_entry_point is not None else "sync"


def make_envs(env_id: str, num_envs: int, mode: str = "auto") -> VectorEnv:
    """`gymnasium.make_vec` with fastdqn's checks; the caller seeds it through `reset(seed=...)`.

    Args:
        env_id: a registered id, or `module:Env-v0` to import `module` first.
        num_envs: sub-envs stepped together.
        mode: `auto` (the env's own vectorized class when it has one, else `sync`), or a
            `gymnasium.VectorizeMode` value.
    """
    if num_envs < 1:
        raise EnvError(f"num_envs={num_envs} must be at least 1; pass --num-envs N with N >= 1")
    spec = find_spec(env_id)
    mode = resolve_vectorization_mode(spec, mode)
    if mode == "vector_entry_point" and spec.vector_entry_point is None:
        raise EnvError(f"{env_id} has no vectorized implementation; use --vectorization-mode sync or async")
    vector_kwargs = {} if mode == "vector_entry_point" else {"autoreset_mode": AutoresetMode.NEXT_STEP}
    try:
        envs = gym.make_vec(spec, num_envs=num_envs, vectorization_mode=mode, vector_kwargs=vector_kwargs)
    except (gym.error.Error, ImportError) as error:
        raise EnvError(f"env id {env_id!r} could not be made: {error}") from None
    try:
        check_spaces(env_id, envs.single_observation_space, envs.single_action_space)
        if envs.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP) != AutoresetMode.NEXT_STEP:
            raise EnvError(f"{env_id}: fastdqn needs NEXT_STEP autoreset, this vector env uses {envs.metadata['autoreset_mode']}")
    except EnvError:
        envs.close()
        raise
    return envs


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


def env_spaces(envs: VectorEnv, env_id: str = "env") -> EnvSpaces:
    return check_spaces(env_id, envs.single_observation_space, envs.single_action_space)


def valid_rows(prev_done: np.ndarray) -> np.ndarray | None:
    """Rows of this step that are real transitions: None when all are, else their indices.

    `prev_done[i]` is True when env i's previous step ended an episode, so this step of env i was the
    autoreset step (NEXT_STEP mode) and must not be stored.
    """
    if not prev_done.any():
        return None
    return np.flatnonzero(~prev_done)


_PLAIN = (int, float, bool, str, type(None), np.generic)


def _capture(obj: object) -> dict[str, Any]:
    """Plain attributes of one env object (arrays as tensors), and its numpy generator's state."""
    state: dict[str, Any] = {}
    for name, value in vars(obj).items():
        if isinstance(value, np.ndarray) and value.dtype != object:
            state[name] = torch.from_numpy(value.copy())
        elif isinstance(value, _PLAIN):
            state[name] = value.item() if isinstance(value, np.generic) else value
        elif isinstance(value, np.random.Generator):
            state[name] = {"bit_generator_state": value.bit_generator.state}
    return state


def _apply(obj: object, state: dict[str, Any]) -> None:
    for name, value in state.items():
        if isinstance(value, dict) and "bit_generator_state" in value:
            getattr(obj, name).bit_generator.state = value["bit_generator_state"]
        elif isinstance(value, torch.Tensor):
            setattr(obj, name, value.numpy().copy())
        else:
            setattr(obj, name, value)


def _layers(envs: VectorEnv) -> list[object] | None:
    """The objects whose plain attributes are the whole env state, or None where that is not known."""
    if type(envs).__module__.startswith("gymnasium.envs.classic_control"):
        return [envs]  # the vectorized classic-control envs keep everything in numpy arrays
    if isinstance(envs, gym.vector.SyncVectorEnv):
        layers: list[object] = [envs]
        for env in envs.envs:
            if not type(env.unwrapped).__module__.startswith("gymnasium.envs.classic_control"):
                return None
            while isinstance(env, gym.Wrapper):
                layers.append(env)
                env = env.env
            layers.append(env)
        return layers
    return None


def snapshot_envs(envs: VectorEnv) -> list[dict[str, Any]] | None:
    """The exact state of a vector env of classic-control envs (CartPole, Acrobot, MountainCar...).

    Other envs (Box2D, MuJoCo, Atari, async vector envs, your own) return None: their state is not
    plain data fastdqn can read, so a resumed run resets them with a fresh seed instead.
    """
    layers = _layers(envs)
    return None if layers is None else [_capture(layer) for layer in layers]


def restore_envs(envs: VectorEnv, snapshot: list[dict[str, Any]]) -> None:
    layers = _layers(envs)
    if layers is None or len(layers) != len(snapshot):
        raise EnvError("the saved env state does not fit this env; resume with the env the run was started with")
    for layer, state in zip(layers, snapshot, strict=True):
        _apply(layer, state)
