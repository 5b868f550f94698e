"""Torch-native CartPole-v1, Acrobot-v1 and MountainCar-v0: batched state tensors on any device.

Each env's dynamics, reward, termination and time limit are Gymnasium's classic-control ones,
step for step (float32 instead of Gymnasium's float64 state: observations agree to float32
tolerance, tests/test_native_envs.py checks it over 10,000 random steps across resets). What
differs is the shape of the step: all N envs advance in a handful of batched tensor ops on the
training device, and an env whose episode ends is reset in the same step (`EnvStep.final_obs`
keeps the observation it ended in).

Randomness is a counter-based hash, as gymnax's per-env keys are: env i's k-th reset draws from
`hash(seed, i, k)`. So each env has its own stream whatever the others do (a member of a stacked
group draws what a single run with its seed draws), the draws are the same on CPU and CUDA, they
need no generator (a CUDA graph can capture them), and the env's whole state is four tensors.

State is updated in place (`copy_`), so a captured step keeps its addresses; everything a step
returns is a fresh tensor that the next step never writes.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from fastdqn.envs.base import EnvStep
from fastdqn.envs.spaces import EnvError, EnvSpaces

_M32 = 0xFFFFFFFF
RESET_BLOCK = 32
"""CPU: reset draws computed ahead per env, in one batch of hash ops."""


def hash32(x: Tensor) -> Tensor:
    """A 32-bit integer mix of int64 values in [0, 2^32) (multipliers below 2^31 keep products in int64)."""
    x = (x ^ (x >> 16)) * 0x7FEB352D & _M32
    x = (x ^ (x >> 15)) * 0x5BD1E995 & _M32
    return x ^ (x >> 16)


class TorchVectorEnv:
    """The shared part of the native envs: counters, time limit, same-step autoreset, seeding.

    Subclasses set `state_dim`, `obs_dim`, `n_actions`, `max_episode_steps` and write `_initial`,
    `_dynamics` and `_observe` as pure batched functions.
    """

    state_dim: int
    obs_dim: int
    n_actions: int
    max_episode_steps: int | None
    max_step_reward: float | None
    env_id: str

    def __init__(self, num_envs: int, device: torch.device | str = "cpu"):
        if num_envs < 1:
            raise EnvError(f"num_envs={num_envs} must be at least 1; pass --num-envs N with N >= 1")
        self.num_envs = num_envs
        self.device = torch.device(device)
        self.spaces = EnvSpaces((self.obs_dim,), torch.float32, self.n_actions)
        self.state = torch.zeros((num_envs, self.state_dim), device=self.device)
        self.steps = torch.zeros(num_envs, dtype=torch.int32, device=self.device)
        """Steps into the current episode, per env."""
        self.resets = torch.zeros(num_envs, dtype=torch.int64, device=self.device)
        """Episodes started so far, per env: the counter of its random stream."""
        self.streams = torch.zeros((num_envs, self.state_dim), dtype=torch.int64, device=self.device)
        # On CPU a step asks the host whether any env ended and skips the reset work when none did,
        # and fresh states come from a table of each env's next RESET_BLOCK draws (a lookup instead
        # of the dozen small hash ops a draw costs). On CUDA those questions would be syncs, so the
        # draws run every step (and stay capturable); both give the same states.
        self.branch_on_host = self.device.type == "cpu"
        self.env_index = torch.arange(num_envs, device=self.device)
        self.table: Tensor | None = None
        """CPU: (N, RESET_BLOCK, state_dim) fresh states for reset counters `table_base + j`."""
        self.table_base = torch.zeros(num_envs, dtype=torch.int64, device=self.device)
        self.time_limit = torch.tensor(self.max_episode_steps or 2**31 - 1, dtype=torch.int32, device=self.device)

    def _initial(self, uniforms: Tensor) -> Tensor:
        """Fresh states (N, state_dim) from uniforms (N, state_dim) in [0, 1)."""
        raise NotImplementedError

    def _dynamics(self, state: Tensor, actions: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(next state (N, state_dim), reward (N,) float32, terminated (N,) bool) for actions (N,) int64."""
        raise NotImplementedError

    def _observe(self, state: Tensor) -> Tensor:
        return state

    def _uniforms(self, counters: Tensor) -> Tensor:
        """(N, *counters.shape[1:], state_dim) float32 in [0, 1): env i's draws for its reset counters (N, ...)."""
        streams = self.streams.view(self.num_envs, *([1] * (counters.dim() - 1)), self.state_dim)
        x = torch.add(streams, counters.unsqueeze(-1), alpha=0x61C88647) & _M32
        return (hash32(x) >> 8).to(torch.float32) * 2.0**-24

    def _fresh(self) -> Tensor:
        """(N, state_dim): each env's start state for its current reset counter."""
        if not self.branch_on_host:
            return self._initial(self._uniforms(self.resets))
        offset = self.resets - self.table_base
        if self.table is None or int(offset.max()) >= RESET_BLOCK:
            self.table_base = self.resets.clone()
            counters = self.resets.unsqueeze(1) + torch.arange(RESET_BLOCK, device=self.device)  # (N, B)
            self.table = self._initial(self._uniforms(counters).view(-1, self.state_dim)).view(self.num_envs, RESET_BLOCK, self.state_dim)
            offset = torch.zeros_like(offset)
        return self.table[self.env_index, offset]

    def reset(self, seed: int | list[int]) -> Tensor:
        """Every env starts a new episode; returns obs (N, obs_dim).

        Env i's stream is keyed by (seed, i). A list of K seeds splits the envs into K equal groups
        (members stacked along the leading axis): env j of group k is keyed by (seeds[k], j), so a
        group draws exactly what a run of N/K envs with that seed draws.
        """
        seeds = [seed] if isinstance(seed, int) else list(seed)
        if self.num_envs % len(seeds):
            raise EnvError(f"{len(seeds)} seeds cannot split {self.num_envs} envs into equal groups")
        group = self.num_envs // len(seeds)
        local = torch.arange(group, device=self.device, dtype=torch.int64).repeat(len(seeds)).unsqueeze(1)  # (N, 1)
        component = torch.arange(self.state_dim, device=self.device, dtype=torch.int64).unsqueeze(0)
        seed_keys = hash32(torch.tensor([s & _M32 for s in seeds], device=self.device)).repeat_interleave(group).unsqueeze(1)
        self.streams.copy_(hash32((seed_keys + hash32(local * self.state_dim + component + 1)) & _M32))
        self.resets.zero_()
        self.steps.zero_()
        self.table = None
        self.state.copy_(self._fresh())
        return self._observe(self.state).clone()

    def step(self, actions: Tensor) -> EnvStep:
        state, reward, terminated = self._dynamics(self.state, actions.to(self.device, non_blocking=True))
        self.steps.add_(1)
        truncated = self.steps >= self.time_limit
        final_obs = self._observe(state)
        done = terminated | truncated
        if self.branch_on_host and not bool(done.any()):
            self.state.copy_(state)
            return EnvStep(final_obs, reward, terminated, truncated, final_obs)
        self.resets.add_(done)
        fresh = self._fresh()
        self.state.copy_(torch.where(done.unsqueeze(1), fresh, state))
        self.steps.masked_fill_(done, 0)
        next_obs = torch.where(done.unsqueeze(1), self._observe(fresh), final_obs)
        return EnvStep(next_obs, reward, terminated, truncated, final_obs)

    def set_state(self, state: Tensor, steps: Tensor | None = None) -> None:
        """Put every env into `state` (N, state_dim), e.g. to follow another implementation step for step."""
        self.state.copy_(state)
        if steps is not None:
            self.steps.copy_(steps)

    def state_dict(self) -> dict[str, Any]:
        return {"kind": self.env_id, **{name: getattr(self, name).clone() for name in ("state", "steps", "resets", "streams")}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("kind") != self.env_id or tuple(state["state"].shape) != tuple(self.state.shape):
            raise EnvError("the saved env state does not fit this env; resume with the env the run was started with")
        for name in ("state", "steps", "resets", "streams"):
            getattr(self, name).copy_(state[name])
        self.table = None

    def close(self) -> None:
        pass


class CartPole(TorchVectorEnv):
    """Gymnasium's CartPole-v1 (Barto, Sutton and Anderson 1983): Euler steps of 0.02 s, reward 1
    every step, terminal when |x| > 2.4 or |theta| > 12 degrees, truncated at 500 steps."""

    env_id = "CartPole-v1"
    state_dim = obs_dim = 4
    n_actions = 2
    max_episode_steps = 500
    max_step_reward = 1.0
    gravity, masscart, masspole, length, force_mag, tau = 9.8, 1.0, 0.1, 0.5, 10.0, 0.02
    total_mass = masscart + masspole
    polemass_length = masspole * length
    theta_threshold = 12 * 2 * math.pi / 360
    x_threshold = 2.4

    def __init__(self, num_envs: int, device: torch.device | str = "cpu"):
        super().__init__(num_envs, device)
        self.limits = torch.tensor([self.x_threshold, math.inf, self.theta_threshold, math.inf], device=self.device)
        self.force_over_mass = torch.tensor([-self.force_mag, self.force_mag], device=self.device) / self.total_mass
        self.four_thirds_length = torch.tensor(self.length * 4.0 / 3.0, device=self.device)
        self.gravity_t = torch.tensor(self.gravity, device=self.device)  # a 0-dim tensor operand skips wrapping a Python float per op
        self.ones = torch.ones(num_envs, device=self.device)  # reward: never written, so shared across steps

    def _initial(self, uniforms: Tensor) -> Tensor:
        return uniforms * 0.1 - 0.05

    def _dynamics(self, state: Tensor, actions: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        # Gymnasium's equations, arranged into few batched ops: on a CPU each op costs a few µs
        # whatever its size, so the op count, not the arithmetic, sets the speed at small N
        _, x_dot, theta, theta_dot = state.unbind(1)
        costheta, sintheta = theta.cos(), theta.sin()
        # temp = (force + m_p l theta_dot^2 sin) / M, the force picked by the action from [-10, +10] / M
        temp = torch.addcmul(self.force_over_mass[actions], theta_dot * theta_dot, sintheta, value=self.polemass_length / self.total_mass)
        denominator = torch.addcmul(self.four_thirds_length, costheta, costheta, value=-self.length * self.masspole / self.total_mass)
        thetaacc = torch.addcmul(sintheta * self.gravity_t, costheta, temp, value=-1.0).div_(denominator)
        xacc = torch.addcmul(temp, thetaacc, costheta, value=-self.polemass_length / self.total_mass)
        next_state = torch.add(state, torch.stack((x_dot, xacc, theta_dot, thetaacc), dim=1), alpha=self.tau)  # Euler, old velocities
        terminated = (next_state.abs() > self.limits).any(dim=1)
        return next_state, self.ones, terminated


class MountainCar(TorchVectorEnv):
    """Gymnasium's MountainCar-v0 (Moore 1990): reward -1 every step, terminal at position >= 0.5
    with velocity >= 0, truncated at 200 steps."""

    env_id = "MountainCar-v0"
    state_dim = obs_dim = 2
    n_actions = 3
    max_episode_steps = 200
    max_step_reward = -1.0
    min_position, max_position, max_speed, goal_position, force, gravity = -1.2, 0.6, 0.07, 0.5, 0.001, 0.0025

    def __init__(self, num_envs: int, device: torch.device | str = "cpu"):
        super().__init__(num_envs, device)
        self.minus_ones = torch.full((num_envs,), -1.0, device=self.device)

    def _initial(self, uniforms: Tensor) -> Tensor:
        position = uniforms[:, 0] * 0.2 - 0.6
        return torch.stack((position, torch.zeros_like(position)), dim=1)

    def _dynamics(self, state: Tensor, actions: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        position, velocity = state[:, 0], state[:, 1]
        velocity = (velocity + (actions - 1) * self.force - torch.cos(3 * position) * self.gravity).clamp(-self.max_speed, self.max_speed)
        position = (position + velocity).clamp(self.min_position, self.max_position)
        velocity = velocity.masked_fill((position == self.min_position) & (velocity < 0), 0.0)
        terminated = (position >= self.goal_position) & (velocity >= 0)
        return torch.stack((position, velocity), dim=1), self.minus_ones, terminated


class Acrobot(TorchVectorEnv):
    """Gymnasium's Acrobot-v1 (Sutton 1996; the book dynamics): one RK4 step of 0.2 s per action,
    torque -1/0/+1, reward -1 until the tip swings above the bar (terminal, reward 0), truncated at
    500 steps. Observations are cos/sin of both angles and both angular velocities."""

    env_id = "Acrobot-v1"
    state_dim = 4
    obs_dim = 6
    n_actions = 3
    max_episode_steps = 500
    max_step_reward = 0.0
    dt = 0.2
    link_length_1 = link_mass_1 = link_mass_2 = link_moi = 1.0
    link_com_pos_1 = link_com_pos_2 = 0.5
    max_vel_1, max_vel_2 = 4 * math.pi, 9 * math.pi

    def _initial(self, uniforms: Tensor) -> Tensor:
        return uniforms * 0.2 - 0.1

    def _derivatives(self, s: Tensor, torque: Tensor) -> Tensor:
        m1, m2, l1, lc1, lc2, moi, g = (
            self.link_mass_1,
            self.link_mass_2,
            self.link_length_1,
            self.link_com_pos_1,
            self.link_com_pos_2,
            self.link_moi,
            9.8,
        )
        theta1, theta2, dtheta1, dtheta2 = s.unbind(1)
        cos2, sin2 = theta2.cos(), theta2.sin()
        d1 = m1 * lc1**2 + m2 * (l1**2 + lc2**2 + 2 * l1 * lc2 * cos2) + 2 * moi
        d2 = m2 * (lc2**2 + l1 * lc2 * cos2) + moi
        phi2 = m2 * lc2 * g * torch.cos(theta1 + theta2 - math.pi / 2.0)
        phi1 = (
            -m2 * l1 * lc2 * dtheta2.square() * sin2
            - 2 * m2 * l1 * lc2 * dtheta2 * dtheta1 * sin2
            + (m1 * lc1 + m2 * l1) * g * torch.cos(theta1 - math.pi / 2)
            + phi2
        )
        ddtheta2 = (torque + d2 / d1 * phi1 - m2 * l1 * lc2 * dtheta1.square() * sin2 - phi2) / (m2 * lc2**2 + moi - d2.square() / d1)
        ddtheta1 = -(d2 * ddtheta2 + phi1) / d1
        return torch.stack((dtheta1, dtheta2, ddtheta1, ddtheta2), dim=1)

    def _dynamics(self, state: Tensor, actions: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        torque = actions.to(torch.float32) - 1.0  # actions 0, 1, 2 -> torque -1, 0, +1
        k1 = self._derivatives(state, torque)
        k2 = self._derivatives(state + self.dt / 2 * k1, torque)
        k3 = self._derivatives(state + self.dt / 2 * k2, torque)
        k4 = self._derivatives(state + self.dt * k3, torque)
        s = state + self.dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
        angles = torch.remainder(s[:, :2] + math.pi, 2 * math.pi) - math.pi  # Gymnasium's wrap to [-pi, pi]
        velocities = torch.stack((s[:, 2].clamp(-self.max_vel_1, self.max_vel_1), s[:, 3].clamp(-self.max_vel_2, self.max_vel_2)), dim=1)
        next_state = torch.cat((angles, velocities), dim=1)
        terminated = -angles[:, 0].cos() - (angles[:, 1] + angles[:, 0]).cos() > 1.0
        return next_state, terminated.to(torch.float32) - 1.0, terminated

    def _observe(self, state: Tensor) -> Tensor:
        angles = state[:, :2]
        cos, sin = angles.cos(), angles.sin()
        return torch.stack((cos[:, 0], sin[:, 0], cos[:, 1], sin[:, 1], state[:, 2], state[:, 3]), dim=1)


NATIVE_ENVS: dict[str, type[TorchVectorEnv]] = {cls.env_id: cls for cls in (CartPole, Acrobot, MountainCar)}
"""The env ids `--env-backend torch` can run natively."""
