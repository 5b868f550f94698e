"""Which rows an update reads: a `Sampler` per member, each drawing from its own seeded generator.

`UniformSampler` is here; `fastdqn.per.PrioritizedSampler` (a sum tree) fits the same protocol.
A group holds one sampler per member, built by `make_sampler` exactly as that member's single run
builds its own, so member k draws the indices its single run draws.
"""

from __future__ import annotations

from typing import Any, Protocol

import torch
from torch import Tensor

from fastdqn.config import Config
from fastdqn.device import restore_generator


class Sampler(Protocol):
    def sample(self, size: int, batch_size: int) -> tuple[Tensor, Tensor | None]:
        """Draw `batch_size` row indices in `[0, size)`; returns (index (B,) int64, weights (B,) or None)."""
        ...

    def update(self, index: Tensor, priorities: Tensor) -> None: ...

    def on_write(self, where: slice | Tensor) -> None:
        """Rows `where` (a ring slice or (n,) int64 ring index) were just written."""
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


def make_sampler(cfg: Config, capacity: int, device: torch.device) -> Sampler:
    """The sampler `cfg`'s run draws with: prioritized under `cfg.per`, else uniform; seeded `cfg.seed`."""
    if cfg.per:
        from fastdqn.per import PrioritizedSampler

        return PrioritizedSampler(capacity, device, cfg.per_alpha, cfg.per_eps, cfg.seed)
    return UniformSampler(device, cfg.seed)
