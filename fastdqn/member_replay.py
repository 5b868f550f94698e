"""One replay storage for K members: a leading member axis, a ring cursor and a sample stream per member.

Member k's rows live in `fields[name][k]` and fill its ring exactly as a single run's `ReplayBuffer`
with the same rows would: the same positions, and indices drawn by `torch.randint` from a generator
seeded with its seed, as `UniformSampler` draws them. Cursors are host integers per member: with
native envs every member writes N rows a step and the cursors stay equal (one slice copy per field),
while Gymnasium's reset steps and n-step windows give members different row counts (one index copy
per field, positions worked out on the host, where the counts are known). Each member has the
sampler its single run has: uniform, or prioritized with its own sum tree (`make_sampler`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from fastdqn.buffer import ReplayBuffer, RingWriter, Sampler, TensorStorage, UniformSampler, available_memory_bytes
from fastdqn.config import Config, ConfigError
from fastdqn.members import MemberBatch
from fastdqn.nstep import NStepWriter
from fastdqn.per import PrioritizedSampler


class MemberReplay:
    """K rings of `capacity` rows each, on `device`.

    Args:
        cfgs: one per member; member k samples as its single run does (`make_sampler(cfgs[k])`).
        obs_shape, obs_dtype: one observation.
        discount: store the per-row bootstrap factor n-step rows carry.
    """

    def __init__(
        self,
        cfgs: Sequence[Config],
        capacity: int,
        obs_shape: tuple[int, ...],
        obs_dtype: torch.dtype,
        device: torch.device,
        discount: bool = False,
    ):
        self.k = len(cfgs)
        self.capacity = capacity
        self.device = device
        specs: dict[str, tuple[tuple[int, ...], torch.dtype]] = {
            "obs": (obs_shape, obs_dtype),
            "action": ((), torch.int64),
            "reward": ((), torch.float32),
            "next_obs": (obs_shape, obs_dtype),
            "terminated": ((), torch.bool),
        }
        if discount:
            specs["discount"] = ((), torch.float32)
        row_bytes = sum(math.prod(shape) * dtype.itemsize for shape, dtype in specs.values())
        needed, free = row_bytes * capacity * self.k, available_memory_bytes(device)
        if free is not None and needed > free:
            raise ConfigError(
                f"{self.k} replay buffers of buffer_capacity={capacity} need {needed / 2**30:.2f} GiB on {device} "
                f"but only {free / 2**30:.2f} GiB is free; lower --buffer-capacity or train fewer members at once"
            )
        self.fields = {name: torch.zeros((self.k, capacity, *shape), dtype=dtype, device=device) for name, (shape, dtype) in specs.items()}
        self.flat = {name: t.view(self.k * capacity, *t.shape[2:]) for name, t in self.fields.items()}
        self.cursor = np.zeros(self.k, dtype=np.int64)
        self.size = np.zeros(self.k, dtype=np.int64)
        self.samplers = [make_sampler(cfg, capacity, device) for cfg in cfgs]
        self.prioritized = isinstance(self.samplers[0], PrioritizedSampler)
        self.offsets = torch.arange(self.k, device=device).unsqueeze(1) * capacity  # (K, 1)

    def extend(self, rows: Mapping[str, Tensor], members: np.ndarray | None) -> None:
        """Append rows: `members` (M,) int64 on the host names each row's member, rows of one member
        in the order a single run would write them; None when the rows are K equal blocks, member-major."""
        m = rows["action"].shape[0]
        if m == 0:
            return
        if members is None:
            per = m // self.k
            start = int(self.cursor[0])
            if (self.cursor == start).all() and start + per <= self.capacity:
                for name, storage in self.fields.items():  # the common case: one slice copy per field
                    storage[:, start : start + per] = rows[name].view(self.k, per, *storage.shape[2:])
                if self.prioritized:
                    for sampler in self.samplers:
                        sampler.on_write(slice(start, start + per))
                self._advance(np.full(self.k, per, dtype=np.int64))
                return
            members = np.repeat(np.arange(self.k), per)
        counts = np.bincount(members, minlength=self.k)
        order = np.argsort(members, kind="stable")
        rank = np.empty(m, dtype=np.int64)
        rank[order] = np.arange(m) - np.repeat(np.cumsum(counts) - counts, counts)  # position among its member's rows
        where = members * self.capacity + (self.cursor[members] + rank) % self.capacity
        index = torch.from_numpy(where).to(self.device, non_blocking=True)
        for name, storage in self.flat.items():
            storage.index_copy_(0, index, rows[name].to(storage.device, storage.dtype, non_blocking=True))
        if self.prioritized:
            for k in np.flatnonzero(counts):
                ring = where[members == k] - k * self.capacity  # member k's rows, in the order it wrote them
                self.samplers[k].on_write(torch.from_numpy(ring).to(self.device))
        self._advance(counts)

    def _advance(self, counts: np.ndarray) -> None:
        self.cursor = (self.cursor + counts) % self.capacity
        self.size = np.minimum(self.size + counts, self.capacity)

    def sample(self, batch_size: int, active: np.ndarray) -> MemberBatch:
        """`batch_size` rows per member, (K, B, ...); members not `active` (host bool (K,)) draw
        nothing and get row 0 (weight 1), which their update ignores."""
        parts, weights = [], []
        for k, sampler in enumerate(self.samplers):
            if active[k]:
                index, weight = sampler.sample(int(self.size[k]), batch_size)
            else:
                index, weight = torch.zeros(batch_size, dtype=torch.int64, device=self.device), None
            parts.append(index)
            if self.prioritized:
                weights.append(torch.ones(batch_size, device=self.device) if weight is None else weight)
        storage_index = torch.stack(parts)  # (K, B) rows of each member's ring
        index = (storage_index + self.offsets).view(-1)  # (K * B,) rows of the flat storage
        fields = {name: t.index_select(0, index).view(self.k, batch_size, *t.shape[1:]) for name, t in self.flat.items()}
        batch = MemberBatch(fields)
        batch.storage_index = storage_index
        if self.prioritized:
            batch.weights = torch.stack(weights)
        return batch

    def update_priorities(self, batch: MemberBatch, td_error: Tensor, active: np.ndarray) -> None:
        """Prioritized replay: each active member's sampled rows get their new |TD error| (K, B)."""
        if not self.prioritized or batch.storage_index is None:
            return
        priorities = td_error.abs()
        for k in np.flatnonzero(active):
            self.samplers[k].update(batch.storage_index[k], priorities[k])

    def member_state(self, k: int) -> dict[str, Any]:
        """Member k's ring as a single run's `ReplayBuffer.state_dict()`."""
        size = int(self.size[k])
        return {
            "capacity": self.capacity,
            "cursor": int(self.cursor[k]),
            "size": size,
            "storage": {"fields": {name: t[k, :size].clone() for name, t in self.fields.items()}},
            "sampler": self.samplers[k].state_dict(),
        }

    def keep(self, slots: Sequence[int]) -> None:
        """Go on with the members at `slots` only; buffers handed out by `member_buffer` keep their rows."""
        index = torch.tensor(list(slots), dtype=torch.int64, device=self.device)
        self.fields = {name: t.index_select(0, index) for name, t in self.fields.items()}
        self.k = len(slots)
        self.flat = {name: t.view(self.k * self.capacity, *t.shape[2:]) for name, t in self.fields.items()}
        self.cursor, self.size = self.cursor[list(slots)], self.size[list(slots)]
        self.samplers = [self.samplers[i] for i in slots]
        self.offsets = torch.arange(self.k, device=self.device).unsqueeze(1) * self.capacity

    def member_buffer(self, k: int) -> ReplayBuffer:
        """Member k's ring as a `ReplayBuffer` over views of its rows (no copy); its sampler is member
        k's (a frozen member's, or pass a copy's state before the group goes on)."""
        sampler = self.samplers[k]
        writer = RingWriter(self.capacity)
        writer.cursor, writer.size = int(self.cursor[k]), int(self.size[k])
        return ReplayBuffer(MemberRows({name: t[k] for name, t in self.fields.items()}, self.capacity, self.device), sampler, writer)

    def state_dict(self) -> dict[str, Any]:
        return {"members": [self.member_state(k) for k in range(self.k)]}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        for k, saved in enumerate(state["members"]):
            if saved["capacity"] != self.capacity:
                raise ValueError(f"saved buffer has capacity {saved['capacity']}, this one {self.capacity}")
            size = int(saved["size"])
            for name, t in self.fields.items():
                t[k, :size].copy_(saved["storage"]["fields"][name])
            self.cursor[k], self.size[k] = int(saved["cursor"]), size
            self.samplers[k].load_state_dict(saved["sampler"])


def make_sampler(cfg: Config, capacity: int, device: torch.device) -> Sampler:
    """The sampler `cfg`'s single run draws with (`train.build_replay`), seeded as it seeds it."""
    if cfg.per:
        return PrioritizedSampler(capacity, device, cfg.per_alpha, cfg.per_eps, cfg.seed)
    return UniformSampler(device, cfg.seed)


class MemberRows(TensorStorage):
    """One member's rows of a `MemberReplay` as a `TensorStorage`: views, nothing allocated."""

    def __init__(self, fields: dict[str, Tensor], capacity: int, device: torch.device):  # no super().__init__: it would allocate
        self.capacity, self.device, self.fields = capacity, device, fields


class MemberNStep(NStepWriter):
    """One n-step window over all K x N envs (envs are independent, so each keeps a single run's
    window); `row_members` says whose each returned row is, in the order `push` returns them."""

    def __init__(
        self,
        n_step: int,
        gamma: float,
        num_envs: int,
        envs_per_member: int,
        obs_shape: tuple[int, ...],
        obs_dtype: torch.dtype,
        device: torch.device,
    ):
        super().__init__(n_step, gamma, num_envs, obs_shape, obs_dtype, device)
        self.envs_per_member = envs_per_member
        self.row_members = np.zeros(0, dtype=np.int64)

    def push(self, rows: Mapping[str, Tensor], reset_step: np.ndarray, terminated: np.ndarray, truncated: np.ndarray) -> dict[str, Tensor]:
        slot = self.steps % self.n_step
        waiting = self.pending.copy()
        waiting[slot] = ~reset_step
        out = super().push(rows, reset_step, terminated, truncated)
        emitted = waiting & ~self.pending  # (n, E): the rows push let go, found as it finds them
        oldest_first = (slot + 1 + np.arange(self.n_step)) % self.n_step
        _, env = np.nonzero(emitted[oldest_first])
        self.row_members = env // self.envs_per_member
        return out

    def keep(self, slots: Sequence[int]) -> None:
        """Go on with the envs of the members at `slots` only."""
        n = self.envs_per_member
        envs = np.concatenate([np.arange(i * n, (i + 1) * n) for i in slots])
        index = torch.from_numpy(envs).to(self.device)
        self.obs = self.obs.index_select(1, index)
        self.action = self.action.index_select(1, index)
        self.returns = self.returns.index_select(1, index)
        self.pending = self.pending[:, envs]
        self.num_envs = envs.size

    def member_state(self, k: int) -> dict[str, Any]:
        """Member k's window as a single run's `NStepWriter.state_dict()`."""
        envs = slice(k * self.envs_per_member, (k + 1) * self.envs_per_member)
        return {
            "obs": self.obs[:, envs].clone(),
            "action": self.action[:, envs].clone(),
            "returns": self.returns[:, envs].clone(),
            "pending": torch.from_numpy(self.pending[:, envs].copy()),
            "steps": self.steps,
        }

    def load_member_state(self, k: int, state: Mapping[str, Any]) -> None:
        envs = slice(k * self.envs_per_member, (k + 1) * self.envs_per_member)
        self.obs[:, envs] = state["obs"]
        self.action[:, envs] = state["action"]
        self.returns[:, envs] = state["returns"]
        self.pending[:, envs] = state["pending"].numpy()
        self.steps = int(state["steps"])
