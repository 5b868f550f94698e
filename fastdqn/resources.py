"""Memory a run needs, estimated from its config before anything is built, and refused when it cannot fit.

A run (or a group of K members) holds, per member: its envs and evaluation envs (host memory), and
on the training device its replay rows, its n-step windows, and its network, target network,
gradient and Adam's two moments. The replay rows are counted exactly as the storage allocates them
(tests/test_hostile.py holds the estimate to the real tensors); the envs from a measured size per
env. A group of 100,000 seeds is refused here in a second instead of after minutes of building.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from fastdqn.config import Config, ConfigError

GIB = 2**30
GYM_ENV_BYTES = 4 * 2**10
"""Host memory per sub-env of a sync vector env (3.4 KiB measured for CartPole-v1)."""
VECTOR_ENV_BYTES = 16 * 2**10
"""Host memory per vector env object (10.3 KiB measured for CartPole-v1's own vectorized class with 16 envs)."""
VECTORIZED_ENV_BYTES = 256
"""Host memory per env inside an env's own vectorized class (numpy rows, not objects)."""
ATARI_ENV_BYTES = 16 * 2**20
"""Host memory per ALE env: the emulator, its screen buffers and the frame-stack wrapper (a generous figure)."""
MEMBER_BYTES = 160 * 2**10
"""Bookkeeping per member of a group beyond its tensors: generators, views, per-member agents (238 KiB
measured for the cartpole preset with its 92 KiB of weights and Adam state)."""


class ResourceError(ConfigError):
    """The run cannot fit in the memory there is; the message gives the estimate and what is available."""


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes one member needs, by part; `device` parts live on the training device, `host` parts in RAM."""

    members: int
    replay: int
    networks: int
    nstep: int
    envs: int
    eval_envs: int
    bookkeeping: int
    device: torch.device

    @property
    def on_device(self) -> int:
        return self.members * (self.replay + self.networks + self.nstep)

    @property
    def on_host(self) -> int:
        return self.members * (self.envs + self.eval_envs + self.bookkeeping)

    @property
    def per_member(self) -> int:
        return self.replay + self.networks + self.nstep + self.envs + self.eval_envs + self.bookkeeping

    @property
    def total(self) -> int:
        return self.on_device + self.on_host

    def parts(self) -> str:
        k = self.members
        named: tuple[tuple[str, int], ...] = (
            ("replay", self.replay + self.nstep),
            ("networks + Adam", self.networks),
            ("envs", self.envs + self.eval_envs),
        )
        named += (("bookkeeping", self.bookkeeping),) if self.bookkeeping else ()
        return ", ".join(f"{name} {k * size / GIB:.2f} GiB" for name, size in named)


def _spaces(cfg: Config) -> tuple[tuple[int, ...], torch.dtype, int]:
    """Observation shape and dtype and the number of actions, without building the run's envs."""
    from fastdqn.envs import is_atari

    if is_atari(cfg.env_id):
        return (4, 84, 84), torch.uint8, 18  # Nature preprocessing; 18 is the full action set, an upper bound
    import gymnasium as gym

    from fastdqn.envs import check_spaces, find_spec

    spec = find_spec(cfg.env_id)
    try:
        env = gym.make(spec)
    except Exception:  # an env that cannot be made fails later with its own line; estimate nothing for it
        return (), torch.float32, 0
    try:
        spaces = check_spaces(cfg.env_id, env.observation_space, env.action_space)
    finally:
        env.close()
    return spaces.obs_shape, spaces.obs_dtype, spaces.n_actions


def replay_bytes(cfg: Config, obs_shape: tuple[int, ...], obs_dtype: torch.dtype) -> int:
    """Bytes of one member's replay storage (and PER sum tree), as buffer.py / frames.py / per.py allocate them."""
    from fastdqn.frames import wants_frame_storage

    capacity = cfg.buffer_capacity
    if wants_frame_storage(cfg.replay_storage, cfg.env_id, obs_shape, obs_dtype) and cfg.actors == 0:
        stack, height, width = obs_shape
        frames = capacity + max(capacity // 16, 8 * stack * cfg.num_envs)
        total = (frames + 1) * height * width + capacity * (2 * stack * 8 + 8 + 4 + 1) + cfg.num_envs * stack * 8
    else:
        obs_bytes = math.prod(obs_shape) * obs_dtype.itemsize
        row = 2 * obs_bytes + 8 + 4 + 1 + (4 if cfg.n_step > 1 else 0)
        total = capacity * row
    if cfg.per:
        total += 2 * 2 ** math.ceil(math.log2(capacity)) * 8  # float64 sum tree
    return total


def network_bytes(cfg: Config, obs_shape: tuple[int, ...], n_actions: int) -> int:
    """Online and target weights, gradients and Adam's two moments: five float32 copies of the parameters."""
    from fastdqn.networks import build_q_network, is_image

    if n_actions == 0:
        return 0
    kind = "nature_cnn" if is_image(obs_shape) else cfg.network
    with torch.device("meta"):  # shapes only: nothing is allocated
        net = build_q_network(kind, obs_shape, n_actions, cfg.hidden_dim)
    return 5 * 4 * sum(p.numel() for p in net.parameters())


def env_bytes(cfg: Config, count: int) -> int:
    """Host memory of one vector env of `count` envs (native envs hold a few floats per env)."""
    from fastdqn.envs import find_spec, is_atari, resolve_backend

    if is_atari(cfg.env_id):
        return count * ATARI_ENV_BYTES
    if resolve_backend(cfg.env_id, cfg.num_envs, cfg.env_backend) == "torch":
        return count * VECTORIZED_ENV_BYTES
    own = find_spec(cfg.env_id).vector_entry_point is not None and cfg.vectorization_mode in ("auto", "vector_entry_point")
    return VECTOR_ENV_BYTES + count * (VECTORIZED_ENV_BYTES if own else GYM_ENV_BYTES)


def estimate(cfg: Config, members: int = 1) -> MemoryEstimate:
    """What `members` runs shaped like `cfg` need (a group's members share every shape)."""
    from fastdqn.device import resolve_device

    obs_shape, obs_dtype, n_actions = _spaces(cfg)
    obs_bytes = math.prod(obs_shape) * obs_dtype.itemsize
    actors = max(cfg.actors, 1)
    return MemoryEstimate(
        members=members,
        replay=replay_bytes(cfg, obs_shape, obs_dtype),
        networks=network_bytes(cfg, obs_shape, n_actions),
        nstep=cfg.n_step * cfg.num_envs * (obs_bytes + 12) if cfg.n_step > 1 else 0,
        envs=actors * env_bytes(cfg, cfg.num_envs),
        eval_envs=env_bytes(cfg, cfg.eval_episodes) if cfg.eval_every_steps else 0,
        bookkeeping=MEMBER_BYTES if members > 1 else 0,
        device=resolve_device(cfg.device),
    )


def available_bytes(device: torch.device) -> tuple[int | None, str]:
    """Free memory on `device` as the OS or driver reports it, and where the figure comes from (None where it cannot be read)."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free), f"free on {device} (torch.cuda.mem_get_info)"
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024, "MemAvailable in /proc/meminfo"
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")), "available pages (sysconf)"
    except (ValueError, OSError, AttributeError):
        return None, "unknown"


def check_memory(cfgs: Sequence[Config], members: int | None = None) -> MemoryEstimate:
    """Refuse, with the numbers, a run or group whose estimate exceeds the memory available now.

    Args:
        members: how many members to count (default: `len(cfgs)`); the CLI passes the size of a grid
            before it builds the grid's configs.
    """
    k = members if members is not None else len(cfgs)
    need = estimate(cfgs[0], k)
    runs = f"{k:,} runs need" if k > 1 else "the run needs"
    fix = "lower --buffer-capacity or --num-envs" + (", or train fewer seeds or grid values at once" if k > 1 else "")
    host_need = need.on_host + (need.on_device if need.device.type != "cuda" else 0)
    host_free, host_source = available_bytes(torch.device("cpu"))
    if host_free is not None and host_need > host_free:
        fits = max(host_free // max(need.per_member, 1), 0)
        many = f" (about {fits:,} fit)" if k > 1 else ""
        raise ResourceError(
            f"{runs} an estimated {host_need / GIB:.2f} GiB of memory ({need.parts()}) but {host_free / GIB:.2f} GiB is available "
            f"({host_source}); {fix}{many}"
        )
    if need.device.type == "cuda":
        free, source = available_bytes(need.device)
        if free is not None and need.on_device > free:
            raise ResourceError(
                f"{runs} an estimated {need.on_device / GIB:.2f} GiB on {need.device} ({need.parts()}) but {free / GIB:.2f} GiB is free "
                f"({source}); {fix}"
            )
    return need
