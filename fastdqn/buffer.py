"""A preallocated tensor ring replay buffer that lives on the training device.

Three small parts, composed by `ReplayBuffer` (the split TorchRL uses, without its machinery):
- `TensorStorage` holds one fixed-size tensor per field, allocated once on the device.
- `RingWriter` owns `cursor` and `size`: a write of B rows lands at `(cursor + arange(B)) % capacity`.
- a `Sampler` draws indices on the device from a seeded `torch.Generator` (`UniformSampler` here).

Writes and reads are index arithmetic on whole batches: no Python loop over transitions, no host
round trip. `cursor` and `size` are host integers because B is known on the host (it comes out of
the env step), so advancing them never waits on the device.

`sample()` returns a `tensordict.TensorDict` (the public API); the training loop calls
`sample_tensors()`, which returns the same fields as a `Batch` NamedTuple. tensordict is imported on
first use: importing it pulls in `torch._dynamo` (about 1.5 s here), which the CartPole time-to-solve
target cannot afford, and a TensorDict per sample costs more than the whole replay budget.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import torch
from torch import Tensor

from fastdqn.config import ConfigError
from fastdqn.device import restore_generator

if TYPE_CHECKING:
    from tensordict import TensorDict

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


def available_memory_bytes(device: torch.device) -> int | None:
    """Free memory on `device` as the OS or driver reports it, None where it cannot be read."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    if hasattr(os, "sysconf") and "SC_AVPHYS_PAGES" in os.sysconf_names:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    return None


class TensorStorage:
    """One preallocated `(capacity, *shape)` tensor per field on `device`.

    Args:
        specs: field name -> (row shape, dtype).
        capacity: rows held.
        device: where every tensor lives.
    """

    def __init__(self, specs: Mapping[str, tuple[tuple[int, ...], torch.dtype]], capacity: int, device: torch.device | str):
        if capacity <= 0:
            raise ConfigError(f"buffer_capacity={capacity} must be a positive integer")
        self.capacity = capacity
        self.device = torch.device(device)
        row_bytes = sum(math.prod(shape) * dtype.itemsize for shape, dtype in specs.values())
        needed = row_bytes * capacity
        free = available_memory_bytes(self.device)
        if free is not None and needed > free:
            raise ConfigError(
                f"a replay buffer of buffer_capacity={capacity} needs {needed / 2**30:.2f} GiB on {self.device} "
                f"({row_bytes} bytes per transition) but only {free / 2**30:.2f} GiB is free; lower --buffer-capacity"
            )
        self.fields = {name: torch.zeros((capacity, *shape), dtype=dtype, device=self.device) for name, (shape, dtype) in specs.items()}

    @property
    def nbytes(self) -> int:
        return sum(t.nbytes for t in self.fields.values())

    def write(self, where: slice | Tensor, rows: Mapping[str, Tensor]) -> None:
        if isinstance(where, slice) and self.device.type == "cpu":
            for name, storage in self.fields.items():
                storage[where] = rows[name]  # one call slices, casts and copies: a third cheaper than slice + copy_
        elif isinstance(where, slice):
            for name, storage in self.fields.items():
                storage[where].copy_(rows[name], non_blocking=True)  # from pinned host memory, the copy is async
        else:
            for name, storage in self.fields.items():
                storage.index_copy_(0, where, rows[name].to(storage.device, storage.dtype, non_blocking=True))

    def read(self, index: Tensor) -> dict[str, Tensor]:
        # index_select skips advanced indexing's generality: half the time of `storage[index]` here
        return {name: storage.index_select(0, index) for name, storage in self.fields.items()}

    def state_dict(self, size: int) -> dict[str, Any]:
        """The first `size` rows of every field (the filled ones, in storage order)."""
        return {"fields": {name: t[:size].clone() for name, t in self.fields.items()}}

    def load_state_dict(self, state: Mapping[str, Any], size: int) -> None:
        for name, storage in self.fields.items():
            saved = state["fields"][name]
            if tuple(saved.shape[1:]) != tuple(storage.shape[1:]) or saved.dtype != storage.dtype:
                raise ValueError(
                    f"saved buffer field {name!r} is {tuple(saved.shape[1:])} {saved.dtype}, "
                    f"this buffer's is {tuple(storage.shape[1:])} {storage.dtype}"
                )
            storage[:size].copy_(saved)


class Storage(Protocol):
    """Preallocated rows on `device`: `TensorStorage`, or `fastdqn.frames.FrameStorage` for frame stacks."""

    capacity: int
    device: torch.device
    fields: dict[str, Tensor]

    @property
    def nbytes(self) -> int: ...

    def write(self, where: slice | Tensor, rows: Mapping[str, Tensor]) -> None: ...

    def read(self, index: Tensor) -> dict[str, Tensor]: ...

    def state_dict(self, size: int) -> dict[str, Any]: ...

    def load_state_dict(self, state: Mapping[str, Any], size: int) -> None: ...


class RingWriter:
    """Round-robin positions for a ring of `capacity` rows; `cursor` is the next row to write."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.cursor = 0
        self.size = 0

    def advance(self, n: int, device: torch.device) -> tuple[slice | Tensor, slice]:
        """Reserve the rows for the newest `min(n, capacity)` of `n` new rows.

        Returns `(where, keep)`: `where` indexes the storage (a slice when the rows do not wrap),
        `keep` selects the incoming rows that survive (the last `capacity` when `n > capacity`).
        """
        keep = slice(max(n - self.capacity, 0), n)
        kept = keep.stop - keep.start
        start = (self.cursor + n - kept) % self.capacity
        where: slice | Tensor
        if start + kept <= self.capacity:
            where = slice(start, start + kept)  # the common case: a plain slice copy, no index tensor
        else:
            where = torch.arange(start, start + kept, device=device) % self.capacity
        self.cursor = (self.cursor + n) % self.capacity
        self.size = min(self.size + n, self.capacity)
        return where, keep


class Sampler(Protocol):
    def sample(self, size: int, batch_size: int) -> tuple[Tensor, Tensor | None]:
        """Draw `batch_size` row indices in `[0, size)`; returns (index (B,) int64, weights (B,) or None)."""
        ...

    def update(self, index: Tensor, priorities: Tensor) -> None: ...

    def on_write(self, where: slice | Tensor) -> None:
        """Rows `where` (a storage slice or (n,) int64 index) were just written."""
        ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class UniformSampler:
    """Uniform indices from `torch.randint` on the device, drawn from a generator seeded once."""

    def __init__(self, device: torch.device | str, seed: int = 0):
        self.generator = torch.Generator(device=torch.device(device))
        self.generator.manual_seed(seed)

    def sample(self, size: int, batch_size: int) -> tuple[Tensor, Tensor | None]:
        index = torch.randint(0, size, (batch_size,), generator=self.generator, device=self.generator.device)
        return index, None

    def update(self, index: Tensor, priorities: Tensor) -> None:
        """Uniform sampling ignores priorities."""

    def on_write(self, where: slice | Tensor) -> None:
        """Uniform sampling needs no bookkeeping per row."""

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        restore_generator(self.generator, state["generator"])


class ReplayBuffer:
    """A FIFO of the newest `capacity` transitions, stored as preallocated device tensors.

    Build one with `ReplayBuffer.create(capacity, obs_shape, ...)`, or compose the parts yourself.
    """

    def __init__(self, storage: Storage, sampler: Sampler | None = None, writer: RingWriter | None = None):
        self.storage = storage
        self.sampler: Sampler = sampler if sampler is not None else UniformSampler(storage.device)
        self.writer = writer if writer is not None else RingWriter(storage.capacity)

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
        """`sampler` replaces the uniform one; `discount` adds the per-row bootstrap factor n-step rows need."""
        specs = {
            "obs": (tuple(obs_shape), obs_dtype),
            "action": ((), torch.int64),
            "reward": ((), torch.float32),
            "next_obs": (tuple(obs_shape), obs_dtype),
            "terminated": ((), torch.bool),
        }
        if discount:
            specs["discount"] = ((), torch.float32)
        storage = TensorStorage(specs, capacity, device)
        return cls(storage, sampler if sampler is not None else UniformSampler(storage.device, seed))

    @property
    def capacity(self) -> int:
        return self.storage.capacity

    @property
    def device(self) -> torch.device:
        return self.storage.device

    @property
    def nbytes(self) -> int:
        return self.storage.nbytes

    def __len__(self) -> int:
        return self.writer.size

    def extend(self, rows: Mapping[str, Tensor]) -> None:
        """Append B transitions; B may exceed the room before the wrap, or the capacity itself.

        Args:
            rows: `obs` (B, *obs_shape), `action` (B,), `reward` (B,), `next_obs` (B, *obs_shape),
                `terminated` (B,), on any device (copied to the buffer's device and dtypes); a dict
                of tensors or a TensorDict. n-step rows also carry `discount` (B,).
        """
        n = rows["action"].shape[0]
        if rows["obs"].shape[0] != n or rows["next_obs"].shape[0] != n or rows["reward"].shape[0] != n or rows["terminated"].shape[0] != n:
            wrong = {name: rows[name].shape[0] for name in FIELDS}
            raise ValueError(f"extend: every field needs the same number of rows, got {wrong}")
        if n == 0:
            return
        where, keep = self.writer.advance(n, self.device)
        if keep.start > 0:
            rows = {name: value[keep] for name, value in rows.items()}
        self.storage.write(where, rows)
        self.sampler.on_write(where)

    def sample_tensors(self, batch_size: int) -> Batch:
        """Draw `batch_size` transitions from the filled rows, as a `Batch` on the buffer's device."""
        if self.writer.size == 0:
            raise ValueError("sample: the replay buffer is empty; extend it first")
        index, weights = self.sampler.sample(self.writer.size, batch_size)
        fields = self.storage.read(index)
        discount = fields.get("discount")  # n-step rows only
        return Batch(fields["obs"], fields["action"], fields["reward"], fields["next_obs"], fields["terminated"], weights, index, discount)

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
        self.sampler.update(index, priorities)

    def state_dict(self) -> dict[str, Any]:
        """The filled rows (in storage order), the writer position and the sampler's RNG state."""
        size = self.writer.size
        return {
            "capacity": self.capacity,
            "cursor": self.writer.cursor,
            "size": size,
            "storage": self.storage.state_dict(size),
            "sampler": self.sampler.state_dict(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if state["capacity"] != self.capacity:
            raise ValueError(f"saved buffer has capacity {state['capacity']}, this one {self.capacity}")
        size = int(state["size"])
        self.storage.load_state_dict(state["storage"], size)
        self.writer.cursor = int(state["cursor"])
        self.writer.size = size
        self.sampler.load_state_dict(state["sampler"])
