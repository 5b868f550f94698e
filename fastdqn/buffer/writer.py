"""Where new rows go: a ring cursor and fill count per member, kept on the host.

B is known on the host (it comes out of the env step), so advancing a cursor never waits on the
device. A single run (K = 1) advances one ring with `advance`; a group writes rows tagged with
their members through `place`, each member's rows landing where its single run would put them.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


class RingWriter:
    """Round-robin positions for K rings of `capacity` rows; `cursors[k]` is member k's next row.

    A single run's ring keeps its cursor and size as plain ints (`cursor`, `size`): it advances once
    per vector step, where a numpy scalar's boxing would cost more than the rest of the arithmetic.
    """

    def __init__(self, capacity: int, members: int = 1):
        self.capacity = capacity
        self.members = members
        self.cursor = 0  # K = 1: the next row
        self.size = 0  # K = 1: rows filled
        self._cursors = np.zeros(members, dtype=np.int64)  # K > 1
        self._sizes = np.zeros(members, dtype=np.int64)

    @property
    def cursors(self) -> np.ndarray:
        """(K,) int64 next row of each member's ring (a copy when K = 1)."""
        return self._cursors if self.members > 1 else np.array([self.cursor], dtype=np.int64)

    @property
    def sizes(self) -> np.ndarray:
        """(K,) int64 rows filled per member (a copy when K = 1)."""
        return self._sizes if self.members > 1 else np.array([self.size], dtype=np.int64)

    def set(self, k: int, cursor: int, size: int) -> None:
        if self.members > 1:
            self._cursors[k], self._sizes[k] = cursor, size
        else:
            self.cursor, self.size = cursor, size

    def advance(self, n: int, device: torch.device) -> tuple[slice | Tensor, slice]:
        """Reserve the rows of one ring (K = 1) for the newest `min(n, capacity)` of `n` new rows.

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

    def place(self, members: np.ndarray) -> np.ndarray:
        """Ring rows (M,) int64 for M new rows of `members` (M,) int64, each member's rows in the
        order its single run writes them; advances every cursor. At most `capacity` rows per
        member per call (the loop writes one vector step at a time)."""
        counts = np.bincount(members, minlength=self.members)
        order = np.argsort(members, kind="stable")
        rank = np.empty(len(members), dtype=np.int64)
        rank[order] = np.arange(len(members)) - np.repeat(np.cumsum(counts) - counts, counts)  # position among its member's rows
        rows: np.ndarray = (self.cursors[members] + rank) % self.capacity
        self.advance_all(counts)
        return rows

    def advance_all(self, counts: np.ndarray) -> None:
        """Member k wrote `counts[k]` rows."""
        if self.members == 1:
            self.cursor = (self.cursor + int(counts[0])) % self.capacity
            self.size = min(self.size + int(counts[0]), self.capacity)
            return
        self._cursors = (self._cursors + counts) % self.capacity
        self._sizes = np.minimum(self._sizes + counts, self.capacity)

    def keep(self, slots: list[int]) -> None:
        cursors, sizes = self.cursors[slots], self.sizes[slots]
        self.members = len(slots)
        self._cursors, self._sizes = cursors, sizes
        self.cursor, self.size = int(cursors[0]), int(sizes[0])
