"""`ReplayBuffer`: a storage, a ring writer and a sampler per member, composed (K >= 1 members).

A single run is K = 1: `extend(rows)` then `sample_tensors(B)` -> `Batch` (B, ...). A group of K
runs extends with rows tagged by member and samples every member at once, `sample_members(B)` ->
`MemberBatch` (K, B, ...); member k's ring fills, and its sampler draws, exactly as its single
run's would with the same rows. `sample()` returns a `tensordict.TensorDict` (the public API), imported
on first use: importing it pulls in `torch._dynamo` (about 1.5 s here), which the CartPole
time-to-solve target cannot afford, and a TensorDict per sample costs more than the replay itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import torch
from torch import Tensor

from fastdqn.buffer.samplers import Sampler, UniformSampler, make_sampler
from fastdqn.buffer.storage import Storage, TensorStorage
from fastdqn.buffer.writer import RingWriter
from fastdqn.config import Config

if TYPE_CHECKING:
    from tensordict import TensorDict

    from fastdqn.per import MemberTrees

FIELDS = ("obs", "action", "reward", "next_obs", "terminated")


class Batch(NamedTuple):
    """Sampled transitions, every tensor on the buffer's device, B = batch size."""

    obs: Tensor  # (B, *obs_shape) obs dtype
    action: Tensor  # (B,) int64
    reward: Tensor  # (B,) float32
    next_obs: Tensor  # (B, *obs_shape) obs dtype
    terminated: Tensor  # (B,) bool; truncation is not stored: it bootstraps
    weights: Tensor | None = None  # (B,) float32 importance weights, None for uniform sampling
    storage_index: Tensor | None = None  # (B,) int64 storage rows, for priority updates
    discount: Tensor | None = None  # (B,) float32 bootstrap factor gamma^k (0 after a terminal), n-step rows only


class MemberBatch(NamedTuple):
    """Sampled transitions of every member, (K, B, ...) on the device."""

    obs: Tensor  # (K, B, *obs_shape)
    action: Tensor  # (K, B) int64
    reward: Tensor  # (K, B) float32
    next_obs: Tensor  # (K, B, *obs_shape)
    terminated: Tensor  # (K, B) bool
    weights: Tensor | None = None  # (K, B) float32 importance weights, prioritized replay only
    storage_index: Tensor | None = None  # (K, B) int64 rows of each member's ring, for priority updates
    discount: Tensor | None = None  # (K, B) float32, n-step rows only


def _specs(obs_shape: tuple[int, ...], obs_dtype: torch.dtype, discount: bool) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    specs = {
        "obs": (tuple(obs_shape), obs_dtype),
        "action": ((), torch.int64),
        "reward": ((), torch.float32),
        "next_obs": (tuple(obs_shape), obs_dtype),
        "terminated": ((), torch.bool),
    }
    if discount:
        specs["discount"] = ((), torch.float32)
    return specs


class ReplayBuffer:
    """A FIFO of the newest `capacity` transitions per member, stored as preallocated device tensors.

    Build one with `ReplayBuffer.create(capacity, obs_shape, ...)` (one run), `for_members(cfgs, ...)`
    (a group), or compose the parts: `samplers` holds one sampler per member of `storage`.
    """

    def __init__(self, storage: Storage, sampler: Sampler | Sequence[Sampler] | None = None, writer: RingWriter | None = None):
        self.storage = storage
        self.members = storage.members
        if sampler is None:
            sampler = [UniformSampler(storage.device) for _ in range(self.members)]
        self.samplers: list[Sampler] = list(sampler) if isinstance(sampler, Sequence) else [sampler]
        if len(self.samplers) != self.members:
            raise ValueError(f"a storage of {self.members} members needs as many samplers, got {len(self.samplers)}")
        self.writer = writer if writer is not None else RingWriter(storage.capacity, self.members)
        self._offsets = torch.arange(self.members, device=storage.device).unsqueeze(1) * storage.capacity  # (K, 1)
        self._tracks_writes = any(not isinstance(s, UniformSampler) for s in self.samplers)  # uniform ones need no on_write
        self.trees: MemberTrees | None = None  # prioritized members: their trees sampled and updated as one

    @classmethod
    def create(
        cls,
        capacity: int,
        obs_shape: tuple[int, ...],
        obs_dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
        seed: int = 0,
        sampler: Sampler | None = None,
        discount: bool = False,
    ) -> ReplayBuffer:
        """One run's buffer; `sampler` replaces the uniform one; `discount` adds the per-row bootstrap factor n-step rows need."""
        storage = TensorStorage(_specs(obs_shape, obs_dtype, discount), capacity, device)
        return cls(storage, sampler if sampler is not None else UniformSampler(storage.device, seed))

    @classmethod
    def for_members(
        cls,
        cfgs: Sequence[Config],
        obs_shape: tuple[int, ...],
        obs_dtype: torch.dtype,
        device: torch.device,
        discount: bool = False,
        storage: Storage | None = None,
    ) -> ReplayBuffer:
        """K members' rings of `cfgs[0].buffer_capacity` rows, member k sampling as `cfgs[k]`'s single run does.

        `storage`: the members' rows (K = len(cfgs)), e.g. a `FrameStorage`; default a `TensorStorage`."""
        capacity, first = cfgs[0].buffer_capacity, cfgs[0]
        if storage is None:
            storage = TensorStorage(_specs(obs_shape, obs_dtype, discount), capacity, device, members=len(cfgs))
        if not first.per:
            return cls(storage, [make_sampler(cfg, capacity, device) for cfg in cfgs])
        from fastdqn.per import MemberTrees  # every member's sum tree in one tensor per level

        trees = MemberTrees(capacity, device, first.per_alpha, first.per_eps, [cfg.seed for cfg in cfgs])
        buffer = cls(storage, list(trees.samplers))
        buffer.trees = trees
        return buffer

    @property
    def sampler(self) -> Sampler:
        """A single run's sampler (member 0's)."""
        return self.samplers[0]

    @sampler.setter
    def sampler(self, sampler: Sampler) -> None:
        self.samplers[0] = sampler
        self._tracks_writes = any(not isinstance(s, UniformSampler) for s in self.samplers)

    @property
    def capacity(self) -> int:
        return self.storage.capacity

    @property
    def device(self) -> torch.device:
        return self.storage.device

    @property
    def nbytes(self) -> int:
        return self.storage.nbytes

    @property
    def sizes(self) -> np.ndarray:
        """(K,) int64 rows filled per member, on the host."""
        return self.writer.sizes

    def __len__(self) -> int:
        return self.writer.size

    def extend(self, rows: Mapping[str, Tensor], members: np.ndarray | None = None) -> slice | Tensor:
        """Append B transitions; with K = 1, B may exceed the room before the wrap, or the capacity itself.

        Args:
            rows: `obs` (B, *obs_shape), `action` (B,), `reward` (B,), `next_obs` (B, *obs_shape),
                `terminated` (B,), on any device (copied to the buffer's device and dtypes); a dict
                of tensors or a TensorDict. n-step rows also carry `discount` (B,).
            members: (B,) int64 host array naming each row's member (K > 1), rows of one member in
                the order its single run writes them; None: one run's rows, or K equal member-major blocks.
        Returns:
            the storage rows written: a slice, or (B,) int64 on the device.
        """
        n = rows["action"].shape[0]
        if rows["obs"].shape[0] != n or rows["next_obs"].shape[0] != n or rows["reward"].shape[0] != n or rows["terminated"].shape[0] != n:
            wrong = {name: rows[name].shape[0] for name in FIELDS}
            raise ValueError(f"extend: every field needs the same number of rows, got {wrong}")
        if n == 0:
            return slice(0, 0)
        if self.members > 1:
            return self._extend_members(rows, members)
        where, keep = self.writer.advance(n, self.device)
        if keep.start > 0:
            rows = {name: value[keep] for name, value in rows.items()}
        self.storage.write(where, rows)
        self.samplers[0].on_write(where)
        return where

    def _extend_members(self, rows: Mapping[str, Tensor], members: np.ndarray | None) -> slice | Tensor:
        k, capacity, cursors = self.members, self.capacity, self.writer.cursors
        per = rows["action"].shape[0] // k
        uniform_step = members is None and (cursors == cursors[0]).all() and cursors[0] + per <= capacity
        if uniform_step and isinstance(self.storage, TensorStorage):
            start = int(cursors[0])  # the common case with native envs: one slice copy per field
            for name, storage in self.storage.stacked.items():
                storage[:, start : start + per] = rows[name].view(k, per, *storage.shape[2:])
            if self._tracks_writes:
                for sampler in self.samplers:
                    sampler.on_write(slice(start, start + per))
            self.writer.advance_all(np.full(k, per, dtype=np.int64))
            return (torch.arange(start, start + per, device=self.device) + self._offsets).view(-1)
        if members is None:
            members = np.repeat(np.arange(k), per)
        ring = self.writer.place(members)
        where = torch.from_numpy(members * capacity + ring).to(self.device, non_blocking=True)
        self.storage.write(where, rows)
        if self._tracks_writes:
            for member in np.unique(members):
                self.samplers[member].on_write(torch.from_numpy(ring[members == member]).to(self.device))
        return where

    def sample_tensors(self, batch_size: int) -> Batch:
        """Draw `batch_size` transitions of a single run's rows, as a `Batch` on the buffer's device."""
        if self.writer.size == 0:
            raise ValueError("sample: the replay buffer is empty; extend it first")
        index, weights = self.samplers[0].sample(self.writer.size, batch_size)
        fields = self.storage.read(index)
        discount = fields.get("discount")  # n-step rows only
        return Batch(fields["obs"], fields["action"], fields["reward"], fields["next_obs"], fields["terminated"], weights, index, discount)

    def sample_members(self, batch_size: int, active: np.ndarray) -> MemberBatch:
        """`batch_size` rows per member, (K, B, ...); members not `active` (host bool (K,)) draw
        nothing and get row 0 (weight 1), which their update ignores."""
        if self.trees is not None:
            return self._gather(*self.trees.sample(self.writer.sizes, batch_size, active))
        parts, weights = [], []
        for k, sampler in enumerate(self.samplers):
            weight = None
            if active[k]:
                index, weight = sampler.sample(int(self.writer.sizes[k]), batch_size)
            else:
                index = torch.zeros(batch_size, dtype=torch.int64, device=self.device)
            parts.append(index)
            weights.append(weight)
        if all(w is None for w in weights):
            return self._gather(torch.stack(parts), None)
        return self._gather(
            torch.stack(parts), torch.stack([torch.ones(batch_size, device=self.device) if w is None else w for w in weights])
        )

    def _gather(self, ring: Tensor, weights: Tensor | None) -> MemberBatch:
        """The rows `ring` (K, B) of each member's ring, as a `MemberBatch`."""
        fields = self.storage.read((ring + self._offsets).view(-1))
        shaped = {name: t.view(self.members, ring.shape[1], *t.shape[1:]) for name, t in fields.items()}
        return MemberBatch(
            shaped["obs"],
            shaped["action"],
            shaped["reward"],
            shaped["next_obs"],
            shaped["terminated"],
            weights,
            ring,
            shaped.get("discount"),
        )

    def sample(self, batch_size: int) -> TensorDict:
        """Draw `batch_size` transitions as a TensorDict (obs, action, reward, next_obs, terminated)."""
        from tensordict import TensorDict

        batch = self.sample_tensors(batch_size)
        data = {name: getattr(batch, name) for name in FIELDS}
        if batch.weights is not None:
            data["weights"] = batch.weights
        if batch.discount is not None:
            data["discount"] = batch.discount
        return TensorDict(data, batch_size=[batch_size], device=self.device)

    def update_priorities(self, index: Tensor, priorities: Tensor) -> None:
        self.samplers[0].update(index, priorities)

    def update_member_priorities(self, batch: MemberBatch, td_error: Tensor, active: np.ndarray) -> None:
        """Each active member's sampled rows get their new |TD error| (K, B) (prioritized replay)."""
        if batch.weights is None or batch.storage_index is None:
            return
        if self.trees is not None:
            self.trees.update(batch.storage_index, td_error.abs(), active)
            return
        priorities = td_error.abs()
        for k in np.flatnonzero(active):
            self.samplers[k].update(batch.storage_index[k], priorities[k])

    def member(self, k: int) -> ReplayBuffer:
        """Member k's ring as a K = 1 buffer over views of its rows (no copy), with member k's sampler."""
        writer = RingWriter(self.capacity)
        writer.cursor, writer.size = int(self.writer.cursors[k]), int(self.writer.sizes[k])
        return ReplayBuffer(self.storage.member(k), self.samplers[k], writer)

    def keep(self, slots: Sequence[int]) -> None:
        """Go on with the members at `slots` only; buffers handed out by `member` keep their rows."""
        self.storage.keep(slots)
        self.writer.keep(list(slots))
        self.samplers = [self.samplers[i] for i in slots]
        if self.trees is not None:
            self.trees.keep(slots)
        self.members = len(slots)
        self._offsets = self._offsets[: self.members]

    def state_dict(self) -> dict[str, Any]:
        """The filled rows (in storage order), the writer position and the sampler's state; a group: one per member."""
        if self.members > 1:
            return {"members": [self.member(k).state_dict() for k in range(self.members)]}
        size = self.writer.size
        return {
            "capacity": self.capacity,
            "cursor": self.writer.cursor,
            "size": size,
            "storage": self.storage.state_dict(size),
            "sampler": self.samplers[0].state_dict(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if self.members > 1 or "members" in state:
            saved = state["members"]
            if len(saved) != self.members:
                raise ValueError(f"saved buffer has {len(saved)} members, this one {self.members}")
            for k, member_state in enumerate(saved):
                member = self.member(k)
                member.load_state_dict(member_state)
                self.writer.set(k, member.writer.cursor, member.writer.size)
            return
        if state["capacity"] != self.capacity:
            raise ValueError(f"saved buffer has capacity {state['capacity']}, this one {self.capacity}")
        size = int(state["size"])
        self.storage.load_state_dict(state["storage"], size)
        self.writer.cursor = int(state["cursor"])
        self.writer.size = size
        self.samplers[0].load_state_dict(state["sampler"])
