"""Gymnasium vector envs behind `DeviceVectorEnv`: construction, the host<->device hop, NEXT_STEP masking.

Gymnasium 1.x vector envs autoreset in NEXT_STEP mode: the step after an episode ends returns the
first observation of the next episode, ignores the action, and reports reward 0. That step is not a
transition: `GymnasiumEnv` marks its rows `valid=False` (known on the host, before any copy) and
`EnvStep.transitions` drops them. The step that ended the episode is a real transition whose
observation is the true final one: `terminated` zeroes its bootstrap, `truncated` does not.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.envs.registration import EnvSpec
from gymnasium.vector import AutoresetMode, VectorEnv
from torch import Tensor

from fastdqn.device import HostToDevice
from fastdqn.envs.base import EnvStep
from fastdqn.envs.spaces import MAX_STEP_REWARD, EnvError, EnvSpaces, check_spaces, find_spec, first_line, is_atari
from fastdqn.finite import check_env_arrays


def resolve_vectorization_mode(spec: EnvSpec, mode: str) -> str:
    if mode != "auto":
        return mode
    return "vector_entry_point" if spec.vector_entry_point is not None else "sync"


def gymnasium_vector_env(env_id: str, num_envs: int, mode: str = "auto", training: bool = True) -> VectorEnv:
    """`gymnasium.make_vec` with fastdqn's checks, a NEXT_STEP numpy vector env; seed it through `reset(seed=...)`.

    Args:
        env_id: a registered id, or `module:Env-v0` to import `module` first.
        num_envs: sub-envs stepped together.
        mode: `auto` (the env's own vectorized class when it has one, else `sync`), or a
            `gymnasium.VectorizeMode` value.
        training: False for evaluation envs; ALE ids then keep lives and raw rewards (atari.py).
    """
    if num_envs < 1:
        raise EnvError(f"num_envs={num_envs} must be at least 1; pass --num-envs N with N >= 1")
    if is_atari(env_id):
        from fastdqn.atari import make_atari_envs  # ale-py and OpenCV load only for Atari runs

        envs = make_atari_envs(env_id, num_envs, mode, training)  # Nature preprocessing for any ALE/ id
        check_spaces(env_id, envs.single_observation_space, envs.single_action_space)
        return envs
    spec = find_spec(env_id)
    mode = resolve_vectorization_mode(spec, mode)
    if mode == "vector_entry_point" and spec.vector_entry_point is None:
        raise EnvError(f"{env_id} has no vectorized implementation; use --vectorization-mode sync or async")
    vector_kwargs = {} if mode == "vector_entry_point" else {"autoreset_mode": AutoresetMode.NEXT_STEP}
    try:
        envs = gym.make_vec(spec, num_envs=num_envs, vectorization_mode=mode, vector_kwargs=vector_kwargs)
    except (gym.error.Error, ImportError) as error:
        raise EnvError(f"env id {env_id!r} could not be made: {error}") from None
    except Exception as error:  # the env's own constructor failed
        raise EnvError(f"env id {env_id!r} could not be made: its constructor raised {type(error).__name__}: {first_line(error)}") from None
    try:
        check_spaces(env_id, envs.single_observation_space, envs.single_action_space)
        if envs.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP) != AutoresetMode.NEXT_STEP:
            raise EnvError(f"{env_id}: fastdqn needs NEXT_STEP autoreset, this vector env uses {envs.metadata['autoreset_mode']}")
    except EnvError:
        envs.close()
        raise
    return envs


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


PLAIN_STATE_FLAG = "fastdqn_plain_state"
"""A class attribute by which an env of your own opts in to exact resume: set `fastdqn_plain_state = True`
on an env whose whole state is its plain attributes (numbers, strings, numpy arrays, numpy generators),
as a classic-control env's is; fastdqn then saves and restores it like theirs."""


def has_plain_state(env: object) -> bool:
    """Whether `env`'s plain attributes are its whole state: Gymnasium's classic-control envs, and envs that opt in."""
    kind = type(env)
    return kind.__module__.startswith("gymnasium.envs.classic_control") or getattr(kind, PLAIN_STATE_FLAG, False) is True


def _layers(envs: VectorEnv) -> list[object] | None:
    """The objects whose plain attributes are the whole env state, or None where that is not known."""
    if has_plain_state(envs):
        return [envs]  # the vectorized classic-control envs keep everything in numpy arrays
    if isinstance(envs, gym.vector.SyncVectorEnv):
        layers: list[object] = [envs]
        for env in envs.envs:
            if not has_plain_state(env.unwrapped):
                return None
            while isinstance(env, gym.Wrapper):
                layers.append(env)
                env = env.env
            layers.append(env)
        return layers
    return None


def snapshot_envs(envs: VectorEnv) -> list[dict[str, Any]] | None:
    """The exact state of a vector env of classic-control envs (CartPole, Acrobot, MountainCar...) or of
    envs that opt in (`PLAIN_STATE_FLAG`).

    Other envs (Box2D, MuJoCo, Atari, async vector envs, your own unless they opt in) return None: their
    state is not plain data fastdqn can read, so a resumed run resets them with a fresh seed instead.
    """
    layers = _layers(envs)
    return None if layers is None else [_capture(layer) for layer in layers]


def restore_envs(envs: VectorEnv, snapshot: list[dict[str, Any]]) -> None:
    layers = _layers(envs)
    if layers is None or len(layers) != len(snapshot):
        raise EnvError("the saved env state does not fit this env; resume with the env the run was started with")
    for layer, state in zip(layers, snapshot, strict=True):
        _apply(layer, state)


class GymnasiumEnv:
    """A Gymnasium vector env as a `DeviceVectorEnv`: actions go to the host, rows come back on `device`.

    The one host round trip per step a numpy env needs: `actions.cpu()` (which also waits for the
    act), the numpy step, then four arrays copied to the device (zero-copy on CPU, pinned staging on
    CUDA). Rows of Gymnasium's NEXT_STEP reset step come back with `valid` False.
    """

    def __init__(self, envs: VectorEnv, env_id: str, device: torch.device | str = "cpu"):
        self.envs = envs
        self.env_id = env_id
        self.num_envs = envs.num_envs
        self.device = torch.device(device)
        self.spaces = env_spaces(envs, env_id)
        spec = getattr(envs, "spec", None)
        self.max_episode_steps: int | None = getattr(spec, "max_episode_steps", None)
        self.max_step_reward: float | None = MAX_STEP_REWARD.get(env_id)
        self.prev_done = np.zeros(self.num_envs, dtype=bool)
        self.to_device = HostToDevice(self.device)

    def reset(self, seed: int) -> Tensor:
        try:
            obs, _ = self.envs.reset(seed=seed)
        except Exception as error:  # the env's own code: one line naming it, before the run has anything to lose
            raise EnvError(f"{self.env_id}: reset raised {type(error).__name__}: {first_line(error)}; fix the env's reset") from None
        check_env_arrays(obs)
        self.prev_done = np.zeros(self.num_envs, dtype=bool)
        return self.to_device("obs", obs)

    def step(self, actions: Tensor) -> EnvStep:
        next_obs, rewards, terminated, truncated, _ = self.envs.step(actions.cpu().numpy())  # the per-step sync a host env needs
        valid = None if not self.prev_done.any() else ~self.prev_done  # NEXT_STEP: this step reset those envs
        self.prev_done = terminated | truncated
        rewards = np.asarray(rewards, dtype=np.float32)  # checked as stored: a finite float64 beyond float32 is inf here
        check_env_arrays(next_obs, rewards)  # NaN/inf from the env stops here, never reaching the replay buffer
        obs_t = self.to_device("next_obs", next_obs)
        reward_t = self.to_device("reward", rewards)
        return EnvStep(obs_t, reward_t, self.to_device("terminated", terminated), self.to_device("truncated", truncated), obs_t, valid)

    def state_dict(self) -> dict[str, Any] | None:
        snapshot = snapshot_envs(self.envs)
        return None if snapshot is None else {"kind": "gymnasium", "envs": snapshot, "prev_done": torch.from_numpy(self.prev_done.copy())}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("kind") != "gymnasium":
            raise EnvError("the saved env state does not fit this env; resume with the env backend the run was started with")
        restore_envs(self.envs, state["envs"])
        self.prev_done = state["prev_done"].numpy().copy()

    def close(self) -> None:
        self.envs.close()
