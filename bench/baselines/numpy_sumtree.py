"""A NumPy binary sum tree for prioritized replay, the baseline `bench/bench_per.py` times fastdqn against.

Written the usual tutorial way (a binary tree in one array, root at 1, leaves at `size + i`), with
two ways to walk it: `sample_loop`/`update_loop` visit one sample at a time in Python, as most
tutorials do; `sample`/`update` walk all samples together, one NumPy op per level (about 20 levels
at 2^20 rows), the fastest plain NumPy form. IS weights are normalised by the batch's largest, as
fastdqn's are, so neither needs a min tree.
"""

from __future__ import annotations

import numpy as np


class NumpySumTree:
    def __init__(self, capacity: int, alpha: float = 0.6, eps: float = 1e-6, seed: int = 0):
        self.capacity, self.alpha, self.eps = capacity, alpha, eps
        self.size = 1 << max(capacity - 1, 1).bit_length()  # leaves, a power of two
        self.sums = np.zeros(2 * self.size)
        self.max_priority = 1.0
        self.rng = np.random.default_rng(seed)

    @property
    def total(self) -> float:
        return float(self.sums[1])

    def fill(self, n: int) -> None:
        """Give rows [0, n) the max priority and rebuild every level (bulk first write)."""
        self.sums[self.size : self.size + n] = self.max_priority**self.alpha
        level = self.size
        while level > 1:
            parents = np.arange(level // 2, level)
            self.sums[parents] = self.sums[2 * parents] + self.sums[2 * parents + 1]
            level //= 2

    def update(self, index: np.ndarray, priorities: np.ndarray) -> None:
        """Set rows `index` to `(priorities + eps) ** alpha`, all rows together, one level at a time."""
        values = (np.asarray(priorities, dtype=np.float64) + self.eps) ** self.alpha
        self.max_priority = max(self.max_priority, float(priorities.max()) + self.eps)
        node = index + self.size
        self.sums[node] = values
        for _ in range(self.size.bit_length() - 1):  # every leaf is at the same depth
            node = node // 2  # a parent listed twice gets the same value twice
            self.sums[node] = self.sums[2 * node] + self.sums[2 * node + 1]

    def sample(self, batch_size: int, beta: float) -> tuple[np.ndarray, np.ndarray]:
        """Stratified proportional draws; returns (index (B,) int64, IS weights (B,) float32)."""
        targets = (np.arange(batch_size) + self.rng.random(batch_size)) * (self.total / batch_size)
        node = np.ones(batch_size, dtype=np.int64)
        while node[0] < self.size:
            left = 2 * node
            left_sum = self.sums[left]
            go_right = targets >= left_sum
            targets = np.where(go_right, targets - left_sum, targets)
            node = left + go_right
        index = np.minimum(node - self.size, self.capacity - 1)
        priority = self.sums[node]
        weights = (priority.min() / priority) ** beta
        return index, weights.astype(np.float32)

    def update_loop(self, index: np.ndarray, priorities: np.ndarray) -> None:
        """`update`, one row and one level at a time in Python (the tutorial form)."""
        for i, p in zip(index.tolist(), priorities.tolist(), strict=True):
            value = (p + self.eps) ** self.alpha
            self.max_priority = max(self.max_priority, p + self.eps)
            node = i + self.size
            self.sums[node] = value
            node //= 2
            while node >= 1:
                self.sums[node] = self.sums[2 * node] + self.sums[2 * node + 1]
                node //= 2

    def sample_loop(self, batch_size: int, beta: float) -> tuple[np.ndarray, np.ndarray]:
        """`sample`, one draw and one level at a time in Python (the tutorial form)."""
        segment = self.total / batch_size
        index = np.empty(batch_size, dtype=np.int64)
        priority = np.empty(batch_size)
        for b in range(batch_size):
            target = (b + self.rng.random()) * segment
            node = 1
            while node < self.size:
                left = 2 * node
                if target < self.sums[left]:
                    node = left
                else:
                    target -= self.sums[left]
                    node = left + 1
            index[b] = min(node - self.size, self.capacity - 1)
            priority[b] = self.sums[node]
        return index, ((priority.min() / priority) ** beta).astype(np.float32)
