"""Prioritized experience replay (Schaul et al. 2016, arXiv:1511.05952) as a `Sampler`, on the device.

Row i is drawn with probability `P(i) = p_i^alpha / sum_j p_j^alpha`, where `p_i = |td_error_i| + eps`.
A new row enters at the largest priority seen so far, so it is replayed soon after it is written.
Importance weights `(size * P(i))^-beta` correct the bias. They are divided by the largest weight in
the batch, so they only scale updates down: `w_i = (min_batch p^alpha / p_i^alpha)^beta`. Dividing by
the largest weight over all stored rows instead (a min tree) lets the one row with the smallest
|TD error| shrink every other weight: on CartPole (n-step 3, 20k steps) the mean weight was 0.047
at beta 0.4 and 0.0007 at beta 1 that way, against 0.36 and 0.12 per batch, which cut the step size
by up to 1000x as beta annealed. Per batch is also what Dopamine and rlax do, and it needs no min tree.

The sum tree is a wide, shallow one held in tensors. Each node has `fanout` children (64 by
default), and the tree stops growing at the first level with at most `top_nodes` (16384) nodes,
which a sample scans whole with one `cumsum`: 2^20 rows need two levels (2^20 leaves, 2^14 group
sums), so a sample is one scan and one walk down, where a binary tree needs 20 walks. A walk moves
the whole batch at once: it gathers the (B, fanout) children of every sample's node and
`searchsorted`s its target in their running sums. An update writes the changed leaves and then the
parents of each changed leaf group; a level small enough (at most 2^15 nodes) gets all its parents
recomputed in one op instead of a few indexed ones. So one sample or update is a fixed handful of
tensor ops whatever B is, with no Python loop over the batch and no host round trip. On cpu the cost
is mostly torch's per-op overhead, so the shape was picked for the fewest ops (`bench/bench_per.py`).

Sums are float64: with a million leaves a float32 running sum drops the low bits of small priorities.
Parents are recomputed from their children, never patched by a delta, so rounding cannot drift.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from fastdqn.config import ConfigError
from fastdqn.device import restore_generator


class PrioritizedSampler:
    """Proportional prioritized sampling over the rows of a `ReplayBuffer`, stratified over the batch.

    Args:
        capacity: rows in the buffer (leaves of the tree).
        device: where the tree and the generator live (the buffer's device).
        alpha: priority exponent; 0 is uniform sampling.
        eps: added to every |TD error| so no stored row has probability 0.
        seed: seeds the sampler's own generator.
        fanout: children per tree node, a power of two.
        top_nodes: the tree stops at the first level with at most this many nodes (scanned whole).
    """

    def __init__(
        self,
        capacity: int,
        device: torch.device | str,
        alpha: float = 0.6,
        eps: float = 1e-6,
        seed: int = 0,
        fanout: int = 64,
        top_nodes: int = 16384,
    ):
        if capacity <= 0:
            raise ConfigError(f"buffer_capacity={capacity} must be a positive integer")
        if alpha < 0:
            raise ConfigError(f"per_alpha={alpha} must be >= 0 (0 samples uniformly)")
        if eps <= 0:
            raise ConfigError(f"per_eps={eps} must be > 0, or rows with zero TD error would never be replayed")
        if fanout < 2 or fanout & (fanout - 1):
            raise ConfigError(f"fanout={fanout} must be a power of two, at least 2")
        self.capacity, self.alpha, self.eps, self.fanout = capacity, alpha, eps, fanout
        self.shift = fanout.bit_length() - 1  # node * fanout == node << shift
        self.device = torch.device(device)
        self.beta = 1.0
        """Importance-weight exponent, set by the caller as it anneals (1 corrects the bias fully)."""
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(seed)
        # sums[0] holds the leaves p^alpha (0 where unwritten), sums[-1] the top level, scanned whole.
        # Every level is padded to a multiple of `fanout` so it views as (-1, fanout).
        length = -(-capacity // fanout) * fanout
        self.sums: list[Tensor] = [torch.zeros(length, dtype=torch.float64, device=self.device)]
        while length > max(top_nodes, fanout):  # a level of at most `fanout` nodes cannot shrink
            length = -(-(length // fanout) // fanout) * fanout
            self.sums.append(torch.zeros(length, dtype=torch.float64, device=self.device))
        self.dense_nodes = max(top_nodes, 1 << 15)
        """A level with at most this many nodes gets all its parents recomputed in one op on update."""
        self.max_priority = torch.ones((), dtype=torch.float64, device=self.device)  # largest |td| + eps seen
        self._strata: dict[int, Tensor] = {}  # batch size -> (B, 1) float64 0..B-1, made once

    @property
    def leaves(self) -> Tensor:
        """(capacity,) float64 `p_i^alpha`, 0 for rows never written."""
        return self.sums[0][: self.capacity]

    @property
    def total(self) -> Tensor:
        """() float64 sum of the leaves, on the device (reading it is a sync point)."""
        return self.sums[-1].sum()

    def sample(self, size: int, batch_size: int) -> tuple[Tensor, Tensor | None]:
        """Draw one index from each of `batch_size` equal slices of the priority mass.

        Returns: index (B,) int64 in `[0, size)` and weights (B,) float32 in (0, 1], the largest 1, on the device.
        """
        fanout, top = self.fanout, self.sums[-1]
        running = top.cumsum(0)  # (T,)
        strata = self._strata.get(batch_size)
        if strata is None:
            strata = self._strata[batch_size] = torch.arange(batch_size, device=self.device, dtype=torch.float64).unsqueeze(1)
        uniform = torch.rand((batch_size, 1), generator=self.generator, device=self.device, dtype=torch.float64)
        targets = uniform.add_(strata).mul_(running[-1] / batch_size)  # (B, 1) in [0, total)
        # A target that rounding pushed past the last running sum would pick one past the end: clamp.
        choice = torch.searchsorted(running, targets, right=True).clamp_max_(len(top) - 1)  # (B, 1)
        targets = targets - (running.take(choice) - top.take(choice))  # minus the mass left of the chosen node
        node = choice.view(-1)
        for level in reversed(self.sums[:-1]):
            children = level.view(-1, fanout).index_select(0, node)  # (B, F); 3x faster than level[node] on cpu
            running = children.cumsum(1)  # (B, F)
            choice = torch.searchsorted(running, targets, right=True).clamp_max_(fanout - 1)  # (B, 1)
            targets = targets - running.sub_(children).gather(1, choice)
            node = choice.view(-1).add_(node, alpha=fanout)
        # Unwritten leaves (p = 0) form the suffix [size, capacity), so a draw that rounding sent
        # there belongs to the last written row.
        index = node.clamp_max_(size - 1)
        priority = self.sums[0].index_select(0, index)  # (B,)
        weights = torch.div(priority.amin(), priority).pow_(self.beta).to(torch.float32)
        return index, weights

    def update(self, index: Tensor, priorities: Tensor) -> None:
        """Set the priorities of rows `index` (B,) int64 to `priorities` (B,) >= 0 (|TD errors|), on the device.

        A row listed twice takes the larger priority, so the result does not depend on scatter order.
        """
        priorities = priorities.detach().to(self.device, torch.float64) + self.eps
        torch.maximum(self.max_priority, priorities.max(), out=self.max_priority)  # in place: `MemberTrees` shares it
        self._set(index.to(self.device), priorities.pow_(self.alpha))

    def on_write(self, where: slice | Tensor) -> None:
        """Give freshly written rows (a slice or (n,) int64 storage index) the largest priority so far."""
        value = self.max_priority.pow(self.alpha)
        if isinstance(where, slice):
            self.sums[0][where].copy_(value.expand(where.stop - where.start))
            self._refresh_range(where.start, where.stop)
        elif where.numel() * self.fanout > self.capacity:  # a bulk write: rebuilding every level is cheaper
            self.sums[0].index_fill_(0, where, value)
            self._refresh_range(0, self.capacity)
        else:
            self._set(where, value.expand(where.shape[0]))

    def _set(self, index: Tensor, values: Tensor) -> None:
        self.sums[0].scatter_reduce_(0, index, values, "amax", include_self=False)
        parents = index
        for level in range(len(self.sums) - 1):  # the top has no parents
            if len(self.sums[level]) <= self.dense_nodes:  # this level and those above: whole, one op each
                self._refresh_parents(level, slice(0, len(self.sums[level]) >> self.shift))
            else:
                parents = parents >> self.shift  # a parent listed twice gets the same value twice
                self._refresh_parents(level, parents)

    def _refresh_range(self, start: int, stop: int) -> None:
        """Recompute the ancestors of leaves [start, stop): a contiguous run of nodes on every level."""
        lo, hi = start, stop
        for level in range(len(self.sums)):
            lo, hi = lo >> self.shift, ((hi - 1) >> self.shift) + 1
            if hi > lo:
                self._refresh_parents(level, slice(lo, hi))

    def _refresh_parents(self, level: int, parents: Tensor | slice) -> None:
        """Recompute the nodes `parents` of level + 1 from their children."""
        if level + 1 == len(self.sums):
            return
        groups = self.sums[level].view(-1, self.fanout)
        if isinstance(parents, slice):
            torch.sum(groups[parents], 1, out=self.sums[level + 1][parents])
        else:
            self.sums[level + 1].index_copy_(0, parents, groups.index_select(0, parents).sum(1))  # (B, F) -> (B,)

    def state_dict(self) -> dict[str, Any]:
        return {"leaves": self.leaves.clone(), "max_priority": self.max_priority.clone(), "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sums[0][: self.capacity].copy_(state["leaves"])
        self.max_priority.copy_(state["max_priority"])
        self._refresh_range(0, self.capacity)
        restore_generator(self.generator, state["generator"])


class MemberTrees:
    """K members' sum trees in shared (K, L) tensors, sampled and updated for every member at once.

    `samplers[k]` is member k's own `PrioritizedSampler` over its rows of the shared tensors (views):
    it writes, saves and loads as a single run's does. `sample` and `update` do what each member's
    sampler would do, with one op over all K trees in place of K: a group's PER round costs a few
    tensor ops more than one run's, not K times its per-op overhead.
    """

    def __init__(self, capacity: int, device: torch.device, alpha: float, eps: float, seeds: Sequence[int]):
        self.samplers = [PrioritizedSampler(capacity, device, alpha, eps, seed) for seed in seeds]
        first = self.samplers[0]
        self.alpha, self.eps, self.fanout, self.device = alpha, eps, first.fanout, device
        self.sums = [torch.stack([sampler.sums[level] for sampler in self.samplers]) for level in range(len(first.sums))]
        self.max_priority = torch.stack([sampler.max_priority for sampler in self.samplers])  # (K,)
        self._bind()

    def _bind(self) -> None:
        for k, sampler in enumerate(self.samplers):
            sampler.sums = [level[k] for level in self.sums]  # contiguous row views: a member's ops are a single run's
            sampler.max_priority = self.max_priority[k]
        self._offsets = [torch.arange(len(self.samplers), device=self.device).unsqueeze(1) * level.shape[1] for level in self.sums]

    def keep(self, slots: Sequence[int]) -> None:
        """Go on with the members at `slots`; samplers handed out before keep their rows."""
        index = torch.tensor(list(slots), dtype=torch.int64, device=self.device)
        self.samplers = [self.samplers[i] for i in slots]
        self.sums = [level.index_select(0, index) for level in self.sums]
        self.max_priority = self.max_priority.index_select(0, index)
        self._bind()

    def sample(self, sizes: np.ndarray, batch_size: int, active: np.ndarray) -> tuple[Tensor, Tensor]:
        """Each active member's `PrioritizedSampler.sample(sizes[k], batch_size)`, as (K, B) index and
        weights; members not `active` draw nothing and get row 0 with weight 1."""
        k, fanout, top = len(self.samplers), self.fanout, self.sums[-1]
        running = top.cumsum(1)  # (K, T)
        strata = torch.arange(batch_size, device=self.device, dtype=torch.float64)
        uniform = torch.stack(
            [
                torch.rand(batch_size, generator=s.generator, device=self.device, dtype=torch.float64)
                if on
                else strata.new_zeros(batch_size)
                for s, on in zip(self.samplers, active, strict=True)
            ]
        )  # (K, B): each member's own stream, as its sampler draws it
        targets = uniform.add_(strata).mul_(running[:, -1:] / batch_size)
        choice = torch.searchsorted(running, targets, right=True).clamp_max_(top.shape[1] - 1)  # (K, B)
        targets = targets - (running.gather(1, choice) - top.gather(1, choice))
        node = choice
        for level, offsets in zip(reversed(self.sums[:-1]), reversed(self._offsets[:-1]), strict=True):
            children = level.view(-1, fanout).index_select(0, (node + offsets // fanout).view(-1))  # (K * B, F)
            running_children = children.cumsum(1)
            picked = torch.searchsorted(running_children, targets.view(-1, 1), right=True).clamp_max_(fanout - 1)  # (K * B, 1)
            targets = (targets.view(-1, 1) - running_children.sub_(children).gather(1, picked)).view(k, -1)
            node = picked.view(k, -1).add_(node, alpha=fanout)
        last = torch.from_numpy(np.maximum(sizes, 1) - 1).to(self.device).unsqueeze(1)  # (K, 1)
        index = torch.minimum(node, last)
        priority = self.sums[0].gather(1, index)  # (K, B)
        ratio = torch.div(priority.amin(dim=1, keepdim=True), priority)
        betas = [s.beta for s in self.samplers]
        if len(set(betas)) == 1:
            weights = ratio.pow_(betas[0]).to(torch.float32)
        else:
            weights = torch.stack([row.pow(beta) for row, beta in zip(ratio, betas, strict=True)]).to(torch.float32)
        mask = torch.from_numpy(active).to(self.device).unsqueeze(1)
        return index.masked_fill_(~mask, 0), weights.masked_fill_(~mask, 1.0)

    def update(self, index: Tensor, priorities: Tensor, active: np.ndarray) -> None:
        """Each active member's `PrioritizedSampler.update(index[k], priorities[k])`: index (K, B) int64
        rows of each member's ring, priorities (K, B) >= 0 (|TD errors|)."""
        rows = torch.from_numpy(np.flatnonzero(active)).to(self.device)
        index, priorities = index.index_select(0, rows), priorities.detach().index_select(0, rows).to(torch.float64) + self.eps
        seen = torch.maximum(self.max_priority.index_select(0, rows), priorities.amax(dim=1))
        self.max_priority.index_copy_(0, rows, seen)
        values = priorities.pow_(self.alpha)
        shift = self.fanout.bit_length() - 1
        flat = index + self._offsets[0].index_select(0, rows)
        self.sums[0].view(-1).scatter_reduce_(0, flat.view(-1), values.view(-1), "amax", include_self=False)
        first = self.samplers[0]
        local = index
        for level in range(len(self.sums) - 1):
            below, above = self.sums[level], self.sums[level + 1]
            groups = below.view(below.shape[0], -1, self.fanout)  # (K, L / F, F)
            if below.shape[1] <= first.dense_nodes:  # this level and those above: whole, one op each
                above[:, : groups.shape[1]] = groups.sum(2)
            else:
                local = local >> shift
                parents = (local + self._offsets[level + 1].index_select(0, rows)).view(-1)
                sources = (local + (self._offsets[level] // self.fanout).index_select(0, rows)).view(-1)
                above.view(-1).index_copy_(0, parents, below.view(-1, self.fanout).index_select(0, sources).sum(1))
