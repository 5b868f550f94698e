"""Frame-deduplicated replay storage: each frame of a stacked pixel observation is stored once.

A 4-frame Atari transition stored naively holds `obs` and `next_obs`, 8 frames of 84x84 uint8
(56 KB), of which 7 are copies of frames stored by neighbouring transitions. `FrameStorage` keeps
one uint8 frame ring, written in order, and gives every transition row `2 * stack` frame ids
(global write counters; slot = id % frame_capacity), so a transition costs about one frame plus
77 bytes. `obs` and `next_obs` are rebuilt at sample time by one gather each on the device.

How a write finds the frames it can reuse, with no loop over rows and no host sync:
- `rows["env"]` (B,) int64, optional: the env each row came from. A row whose `obs` equals, frame
  for frame, the `next_obs` of the same env's previous row reuses those 4 ids ("linked"). A row
  whose obs is that stack shifted by one (the env stepped once unseen, e.g. the step after a life
  loss that the train loop drops) reuses 3 and writes 1.
- any other row (an episode start, or no `env` given) stores its obs frames, one per run of equal
  neighbours: a reset stack that repeats its first frame costs 1 frame, a zero-padded one 2.
- `next_obs` that is `obs` rolled by one new frame costs 1 frame; otherwise (n-step rows, say)
  it is stored like an unlinked obs.
Links are decided by comparing pixels, not by trusting episode bookkeeping, so a rebuilt stack
always equals the stack that was written, whatever the env's reset padding or the caller's row
order. Rows that write nothing at a position send it to a scratch slot, which keeps every write
a fixed-size `index_copy_`.

Eviction: the frame ring holds `frame_capacity` frames, more than `capacity` rows because each
episode start costs an extra frame or two. Should short episodes make the ring wrap over a frame
that a live row still needs, that row is invalid: `read` swaps it for the newest row (always
valid), so a sampled stack never mixes frames from different moments. With the default margin of
capacity/16 this needs episodes shorter than ~16 steps on average; Atari lives are longer.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from fastdqn.buffer import ReplayBuffer, UniformSampler
from fastdqn.config import ConfigError
from fastdqn.envs.spaces import is_atari
from fastdqn.resources import available_bytes

NO_FRAME = -(2**62)  # an id older than any ring position: an env with no previous row never links


def _word_dtype(frame_bytes: int) -> torch.dtype:
    """The widest integer that tiles a frame: CPU copy and compare kernels run per element."""
    for dtype in (torch.int64, torch.int32, torch.int16):
        if frame_bytes % dtype.itemsize == 0:
            return dtype
    return torch.uint8


def _runs(stacks: Tensor) -> Tensor:
    """(B, S) bool: True where a frame differs from the next one (the last frame always counts)."""
    differs = (stacks[:, :-1] != stacks[:, 1:]).any(2)  # (B, S-1)
    return torch.cat([differs, torch.ones_like(differs[:, :1])], dim=1)


def _same(a: Tensor, b: Tensor) -> Tensor:
    """(B,) bool: row-wise equality of two (B, ...) tensors."""
    return (a == b).flatten(1).all(1)


class FrameStorage:
    """Replay storage for (stack, H, W) uint8 frame stacks that keeps each frame once.

    Implements `TensorStorage`'s interface for `ReplayBuffer`: `write(where, rows)`,
    `read(index)`, `capacity`, `device`, `nbytes`, `fields` (the per-row tensors stored as given:
    action, reward, terminated).

    Args:
        capacity: transition rows held.
        frame_shape: (H, W) of one frame.
        stack: frames per observation.
        num_envs: env ids in `rows["env"]` lie in [0, num_envs).
        device: where the frames and every index live.
        frame_capacity: frames in the ring; default `capacity + max(capacity // 16, 8 * stack * num_envs)`.
    """

    def __init__(
        self,
        capacity: int,
        frame_shape: tuple[int, int] = (84, 84),
        stack: int = 4,
        num_envs: int = 1,
        device: torch.device | str = "cpu",
        frame_capacity: int | None = None,
    ):
        if capacity <= 0:
            raise ConfigError(f"buffer_capacity={capacity} must be a positive integer")
        self.capacity = capacity
        self.stack = stack
        self.num_envs = num_envs
        self.device = torch.device(device)
        self.members = 1  # frame ids are one run's: groups keep tensor storage
        self.frame_capacity = frame_capacity if frame_capacity is not None else capacity + max(capacity // 16, 8 * stack * num_envs)
        frame_bytes = math.prod(frame_shape)
        row_bytes = 2 * stack * 8 + 8 + 4 + 1
        needed = (self.frame_capacity + 1) * frame_bytes + capacity * row_bytes + num_envs * stack * 8
        free, _source = available_bytes(self.device)
        if free is not None and needed > free:
            raise ConfigError(
                f"a frame replay buffer of buffer_capacity={capacity} needs {needed / 2**30:.2f} GiB on {self.device} "
                f"({needed / capacity:.0f} bytes per transition) but only {free / 2**30:.2f} GiB is free; lower --buffer-capacity"
            )
        # The last frame is the scratch slot that absorbs the writes a row does not need.
        self.frames = torch.zeros((self.frame_capacity + 1, *frame_shape), dtype=torch.uint8, device=self.device)
        # The same memory seen as rows of machine words: gathers, copies and compares move 8 bytes
        # per element instead of 1 (7x faster on CPU for 84x84 frames).
        self.frame_shape = tuple(frame_shape)
        self.word = _word_dtype(frame_bytes)
        self.words = self.frames.view(self.frame_capacity + 1, frame_bytes).view(self.word)  # (F+1, W)
        self.ids = torch.zeros((capacity, 2 * stack), dtype=torch.int64, device=self.device)  # obs ids, then next_obs ids
        self.fields = {
            "action": torch.zeros(capacity, dtype=torch.int64, device=self.device),
            "reward": torch.zeros(capacity, dtype=torch.float32, device=self.device),
            "terminated": torch.zeros(capacity, dtype=torch.bool, device=self.device),
        }
        self.env_next_ids = torch.full((num_envs, stack), NO_FRAME, dtype=torch.int64, device=self.device)
        self.written = torch.zeros((), dtype=torch.int64, device=self.device)  # frames ever written; the next id
        self.newest_row: int | Tensor = 0
        self.rows_written = 0
        self._positions = torch.arange(stack, device=self.device)

    @property
    def nbytes(self) -> int:
        tensors = [self.frames, self.ids, self.env_next_ids, *self.fields.values()]
        return sum(t.nbytes for t in tensors)

    def frames_per_row(self) -> float:
        """Frames written per transition written so far (a host sync; for tests and reports)."""
        return float(self.written.item()) / max(self.rows_written, 1)

    def write(self, where: slice | Tensor, rows: Mapping[str, Tensor]) -> None:
        """Store B transitions at rows `where` (a slice or (B,) int64 index).

        Args:
            rows: `obs`, `next_obs` (B, stack, H, W) uint8; `action` (B,); `reward` (B,);
                `terminated` (B,); optionally `env` (B,) int64 env ids, any device.
        """
        n, stack, frame_capacity = rows["obs"].shape[0], self.stack, self.frame_capacity
        obs = self._as_words(rows["obs"], n)  # (B, S, W)
        next_obs = self._as_words(rows["next_obs"], n)
        if 2 * stack * n > frame_capacity:
            raise ValueError(f"a write of {n} rows may need {2 * stack * n} frames; the ring has {frame_capacity}; write fewer rows")
        last = self._positions == stack - 1  # (S,)

        # Link each row to the previous next_obs of its env; only ids that outlive this write count.
        linked = shifted = torch.zeros(n, dtype=torch.bool, device=self.device)
        prev = torch.full((n, stack), NO_FRAME, dtype=torch.int64, device=self.device)
        if "env" in rows:
            env = rows["env"].to(self.device, torch.int64, non_blocking=True)
            prev = self.env_next_ids[env]  # (B, S)
            alive = prev.min(1).values >= self.written + 2 * stack * n - frame_capacity
            prev_frames = self.words[prev.remainder(frame_capacity)]  # (B, S, W)
            linked = alive & _same(prev_frames, obs)
            shifted = alive & ~linked & _same(prev_frames[:, 1:], obs[:, :-1])

        # New ids: each row takes a block of consecutive ids, obs frames first.
        obs_new = torch.where(linked[:, None], False, torch.where(shifted[:, None], last, _runs(obs)))  # (B, S)
        rolled = _same(next_obs[:, :-1], obs[:, 1:])
        next_new = torch.where(rolled[:, None], last, _runs(next_obs))  # (B, S)
        obs_count, next_count = obs_new.cumsum(1), next_new.cumsum(1)  # (B, S)
        per_row = obs_count[:, -1] + next_count[:, -1]  # (B,)
        base = self.written + per_row.cumsum(0) - per_row  # (B,) first new id of each row

        # A frame that repeats its right neighbour shares that neighbour's id (same pixels).
        obs_run_ids = base[:, None] + obs_count - obs_new.long()
        shifted_ids = torch.cat([prev[:, 1:], obs_run_ids[:, -1:]], dim=1)
        obs_ids = torch.where(linked[:, None], prev, torch.where(shifted[:, None], shifted_ids, obs_run_ids))
        next_run_ids = (base + obs_count[:, -1])[:, None] + next_count - next_new.long()
        next_ids = torch.where(rolled[:, None], torch.cat([obs_ids[:, 1:], next_run_ids[:, -1:]], dim=1), next_run_ids)

        # Every position of an unlinked stack writes (run members write identical pixels to one slot).
        obs_writes = ~linked[:, None] & (~shifted[:, None] | last)
        next_writes = ~rolled[:, None] | last
        scratch = torch.full_like(obs_ids, frame_capacity)
        self.words.index_copy_(0, torch.where(obs_writes, obs_ids % frame_capacity, scratch).flatten(), obs.flatten(0, 1))
        self.words.index_copy_(0, torch.where(next_writes, next_ids % frame_capacity, scratch).flatten(), next_obs.flatten(0, 1))
        self.written += per_row.sum()
        self.rows_written += n

        if "env" in rows:
            self.env_next_ids[env] = next_ids
        self._write_rows(where, {"ids": torch.cat([obs_ids, next_ids], dim=1), **{k: rows[k] for k in self.fields}})
        self.newest_row = where.stop - 1 if isinstance(where, slice) else where[-1]

    def _as_words(self, stacks: Tensor, n: int) -> Tensor:
        stacks = stacks.to(self.device, torch.uint8, non_blocking=True).reshape(n, self.stack, -1).contiguous()
        return stacks.view(self.word)  # (B, S, W)

    def _gather(self, ids: Tensor) -> Tensor:
        """(B, S, H, W) uint8 frames for (B, S) ids."""
        return self.words[ids % self.frame_capacity].view(torch.uint8).reshape(*ids.shape, *self.frame_shape)

    def _write_rows(self, where: slice | Tensor, rows: Mapping[str, Tensor]) -> None:
        for name, value in rows.items():
            storage = self.ids if name == "ids" else self.fields[name]
            value = value.to(self.device, storage.dtype, non_blocking=True)
            if isinstance(where, slice):
                storage[where].copy_(value)
            else:
                storage.index_copy_(0, where, value)

    def valid(self, index: Tensor) -> Tensor:
        """(B,) bool: the rows at `index` still have every frame of their stacks in the ring."""
        return self.ids[index].min(1).values >= self.written - self.frame_capacity

    def read(self, index: Tensor) -> dict[str, Tensor]:
        """Rows at `index` (B,) int64, with obs/next_obs rebuilt as (B, stack, H, W) uint8 stacks."""
        index = torch.where(self.valid(index), index, self.newest_row)  # rows whose frames were overwritten
        ids = self.ids[index]  # (B, 2S)
        return {
            "obs": self._gather(ids[:, : self.stack]),
            "next_obs": self._gather(ids[:, self.stack :]),
            **{name: storage[index] for name, storage in self.fields.items()},
        }

    def state_dict(self, size: int) -> dict[str, Any]:
        """Every tensor and counter (all of the frame ring: `size` rows can reach any of it)."""
        return {
            "frames": self.frames.clone(),
            "ids": self.ids.clone(),
            "env_next_ids": self.env_next_ids.clone(),
            "written": self.written.clone(),
            "newest_row": self.newest_row,
            "rows_written": self.rows_written,
            "fields": {name: t.clone() for name, t in self.fields.items()},
        }

    def load_state_dict(self, state: Mapping[str, Any], size: int) -> None:
        for name in ("frames", "ids", "env_next_ids", "written"):
            target: Tensor = getattr(self, name)
            if tuple(state[name].shape) != tuple(target.shape):
                raise ValueError(f"saved frame storage {name!r} is {tuple(state[name].shape)}, this one's {tuple(target.shape)}")
            target.copy_(state[name])
        for name, storage in self.fields.items():
            storage.copy_(state["fields"][name])
        self.newest_row = state["newest_row"]
        self.rows_written = int(state["rows_written"])


def wants_frame_storage(replay_storage: str, env_id: str, obs_shape: tuple[int, ...], obs_dtype: torch.dtype) -> bool:
    """`frames` for `replay_storage="frames"`, or `auto` with an ALE id; only (stack, H, W) uint8 fits."""
    wanted = replay_storage == "frames" or (replay_storage == "auto" and is_atari(env_id))
    if wanted and (len(obs_shape) != 3 or obs_dtype != torch.uint8):
        raise ConfigError(f"replay_storage=frames needs (stack, H, W) uint8 observations; {env_id} gives {obs_shape} {obs_dtype}")
    return wanted


def frame_replay_buffer(
    capacity: int, obs_shape: tuple[int, ...], num_envs: int, device: torch.device | str, seed: int = 0
) -> ReplayBuffer:
    """A uniform `ReplayBuffer` over a `FrameStorage` for (stack, H, W) uint8 observations."""
    stack, height, width = obs_shape
    storage = FrameStorage(capacity, (height, width), stack, num_envs, device)
    return ReplayBuffer(storage, UniformSampler(storage.device, seed))
