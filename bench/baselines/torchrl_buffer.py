"""TorchRL's `ReplayBuffer(LazyTensorStorage)` on the same CartPole rows, for the replay-path comparison.

Optional: the `bench` extra installs torchrl; without it the torchrl row is reported as skipped.
TorchRL keeps a TensorDict of preallocated tensors (allocated on the first `extend`), writes with a
round-robin writer and samples uniformly, the same storage / writer / sampler split fastdqn's
buffer has, so the row measures what the generality of its TensorDict path costs per step.
"""

from __future__ import annotations

from typing import Any

import torch


def torchrl_buffer(capacity: int, batch_size: int, device: str) -> Any:
    """A TorchRL ReplayBuffer over a LazyTensorStorage of `capacity` rows on `device`, sampling `batch_size`."""
    from torchrl.data import LazyTensorStorage, ReplayBuffer

    return ReplayBuffer(storage=LazyTensorStorage(capacity, device=torch.device(device)), batch_size=batch_size)


def as_tensordict(rows: dict[str, torch.Tensor]) -> Any:
    """Rows (N, ...) as the TensorDict TorchRL's `extend` takes."""
    from tensordict import TensorDict

    n = next(iter(rows.values())).shape[0]
    return TensorDict(dict(rows), batch_size=[n])
