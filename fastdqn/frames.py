"""Frame-deduplicated replay storage: each frame of a stacked pixel observation is stored once.

A 4-frame Atari transition stored naively holds `obs` and `next_obs`, 8 frames of 84x84 uint8
(56 KB), of which 7 are copies of frames stored by neighbouring transitions. `FrameStorage` keeps
one uint8 frame ring, written in order, and gives every transition row `2 * stack` frame ids
(write counters; slot = id % frame_capacity), so a transition costs about one frame plus
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

Many runs (K members, `fastdqn.group`): one frame ring per member with ids of its own, stacked along
a leading K axis, so member k stores exactly the frames and ids its single run stores, and a
sampled row gathers from its own member's ring only; env ids are group-wide (member k's envs are
k*N..(k+1)*N-1).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from fastdqn.buffer import ReplayBuffer, UniformSampler
from fastdqn.config import Config, ConfigError
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
    """Replay storage for (stack, H, W) uint8 frame stacks that keeps each frame once, for K >= 1 members.

    Implements `TensorStorage`'s interface for `ReplayBuffer`: `write(where, rows)`, `read(index)`,
    `member(k)`, `keep(slots)`, `capacity`, `members`, `device`, `nbytes`, `fields` (the per-row
    tensors stored as given: action, reward, terminated).

    Member k owns rows `[k * capacity, (k + 1) * capacity)`, envs `[k * num_envs, (k + 1) * num_envs)`
    and a frame ring of its own, whose ids count member k's frames only: its ids, frames and sampled
    stacks are those its single run would hold (a write's rows of member k, in their order, are the
    rows its single run writes). Every member-owned tensor has a leading K axis (`stacked`); the
    attributes are flat views of them, so one gather serves every member.

    Args:
        capacity: transition rows held per member.
        frame_shape: (H, W) of one frame.
        stack: frames per observation.
        num_envs: envs per member; env ids in `rows["env"]` lie in [0, members * num_envs).
        device: where the frames and every index live.
        frame_capacity: frames in each member's ring; default `capacity + max(capacity // 16, 8 * stack * num_envs)`.
        members: K, the runs whose rows and frames sit side by side.
    """

    def __init__(
        self,
        capacity: int,
        frame_shape: tuple[int, int] = (84, 84),
        stack: int = 4,
        num_envs: int = 1,
        device: torch.device | str = "cpu",
        frame_capacity: int | None = None,
        members: int = 1,
    ):
        if capacity <= 0:
            raise ConfigError(f"buffer_capacity={capacity} must be a positive integer")
        self.capacity = capacity
        self.stack = stack
        self.num_envs = num_envs
        self.device = torch.device(device)
        self.frame_capacity = frame_capacity if frame_capacity is not None else capacity + max(capacity // 16, 8 * stack * num_envs)
        frame_bytes = math.prod(frame_shape)
        row_bytes = 2 * stack * 8 + 8 + 4 + 1
        needed = members * ((self.frame_capacity + 1) * frame_bytes + capacity * row_bytes + num_envs * stack * 8)
        free, _source = available_bytes(self.device)
        if free is not None and needed > free:
            many = (
                f"{members} frame replay buffers of buffer_capacity={capacity} need"
                if members > 1
                else f"a frame replay buffer of buffer_capacity={capacity} needs"
            )
            fewer = " or train fewer members at once" if members > 1 else ""
            raise ConfigError(
                f"{many} {needed / 2**30:.2f} GiB on {self.device} "
                f"({needed / capacity / members:.0f} bytes per transition) but only {free / 2**30:.2f} GiB is free; lower --buffer-capacity{fewer}"
            )
        self.frame_shape = tuple(frame_shape)
        self.word = _word_dtype(frame_bytes)
        self._positions = torch.arange(stack, device=self.device)
        k, dev = members, self.device
        self._bind(
            {
                # The last frame of each ring is the scratch slot that absorbs the writes a row does not need.
                "frames": torch.zeros((k, self.frame_capacity + 1, *frame_shape), dtype=torch.uint8, device=dev),
                "ids": torch.zeros((k, capacity, 2 * stack), dtype=torch.int64, device=dev),  # obs ids, then next_obs ids
                "action": torch.zeros((k, capacity), dtype=torch.int64, device=dev),
                "reward": torch.zeros((k, capacity), dtype=torch.float32, device=dev),
                "terminated": torch.zeros((k, capacity), dtype=torch.bool, device=dev),
                "env_next_ids": torch.full((k, num_envs, stack), NO_FRAME, dtype=torch.int64, device=dev),
                "written": torch.zeros(k, dtype=torch.int64, device=dev),  # frames ever written per member; its next id
                "newest": torch.zeros(k, dtype=torch.int64, device=dev),  # each member's last written ring row
                "rows_written": torch.zeros(k, dtype=torch.int64, device=dev),
            }
        )

    def _bind(self, stacked: dict[str, Tensor]) -> None:
        self.stacked = stacked  # name -> (K, ...)
        self.members = k = stacked["written"].shape[0]
        self.frames = stacked["frames"]  # (K, F+1, H, W)
        # The same memory seen as rows of machine words: gathers, copies and compares move 8 bytes
        # per element instead of 1 (7x faster on CPU for 84x84 frames).
        self.words = self.frames.view(k * (self.frame_capacity + 1), -1).view(self.word)  # (K*(F+1), W)
        self.ids = stacked["ids"].view(k * self.capacity, 2 * self.stack)
        self.fields = {name: stacked[name].view(k * self.capacity) for name in ("action", "reward", "terminated")}
        self.env_next_ids = stacked["env_next_ids"].view(k * self.num_envs, self.stack)
        self.written, self.newest, self.rows_written = stacked["written"], stacked["newest"], stacked["rows_written"]
        self._member_ids = torch.arange(k, device=self.device)

    @property
    def nbytes(self) -> int:
        return sum(t.nbytes for t in self.stacked.values())

    def frames_per_row(self) -> float:
        """Frames written per transition written so far (a host sync; for tests and reports)."""
        return float(self.written.sum().item()) / max(int(self.rows_written.sum().item()), 1)

    def write(self, where: slice | Tensor, rows: Mapping[str, Tensor]) -> None:
        """Store B transitions at flat rows `where` (a slice, K = 1 only, or (B,) int64 index).

        Args:
            rows: `obs`, `next_obs` (B, stack, H, W) uint8; `action` (B,); `reward` (B,);
                `terminated` (B,); optionally `env` (B,) int64 env ids, any device.
        """
        n, stack, frame_capacity, ring = rows["obs"].shape[0], self.stack, self.frame_capacity, self.frame_capacity + 1
        obs = self._as_words(rows["obs"], n)  # (B, S, W)
        next_obs = self._as_words(rows["next_obs"], n)
        most = n if self.members == 1 else min(n, self.num_envs)  # a group writes one vector step: a row per env at most
        if 2 * stack * most > frame_capacity:
            raise ValueError(f"a write of {most} rows may need {2 * stack * most} frames; the ring has {frame_capacity}; write fewer rows")
        last = self._positions == stack - 1  # (S,)
        if isinstance(where, slice):
            member = torch.zeros(n, dtype=torch.int64, device=self.device)
        else:
            member = torch.div(where, self.capacity, rounding_mode="floor")  # (B,)
        counts = torch.bincount(member, minlength=self.members)  # (K,) rows of each member in this write
        written = self.written[member]  # (B,) the next id of each row's member
        ring_start = (member * ring)[:, None]  # (B, 1) each row's member's first frame slot

        # Link each row to the previous next_obs of its env; only ids that outlive this write count.
        linked = shifted = torch.zeros(n, dtype=torch.bool, device=self.device)
        prev = torch.full((n, stack), NO_FRAME, dtype=torch.int64, device=self.device)
        if "env" in rows:
            env = rows["env"].to(self.device, torch.int64, non_blocking=True)
            prev = self.env_next_ids[env]  # (B, S)
            alive = prev.min(1).values >= written + 2 * stack * counts[member] - frame_capacity
            prev_frames = self.words[ring_start + prev.remainder(frame_capacity)]  # (B, S, W)
            linked = alive & _same(prev_frames, obs)
            shifted = alive & ~linked & _same(prev_frames[:, 1:], obs[:, :-1])

        # New ids: each row takes a block of consecutive ids of its member, obs frames first.
        obs_new = torch.where(linked[:, None], False, torch.where(shifted[:, None], last, _runs(obs)))  # (B, S)
        rolled = _same(next_obs[:, :-1], obs[:, 1:])
        next_new = torch.where(rolled[:, None], last, _runs(next_obs))  # (B, S)
        obs_count, next_count = obs_new.cumsum(1), next_new.cumsum(1)  # (B, S)
        per_row = obs_count[:, -1] + next_count[:, -1]  # (B,)
        mine = member[:, None] == self._member_ids  # (B, K)
        before = (per_row[:, None] * mine).cumsum(0).gather(1, member[:, None]).squeeze(
            1
        ) - per_row  # (B,) ids its member's earlier rows take
        base = written + before  # (B,) first new id of each row

        # A frame that repeats its right neighbour shares that neighbour's id (same pixels).
        obs_run_ids = base[:, None] + obs_count - obs_new.long()
        shifted_ids = torch.cat([prev[:, 1:], obs_run_ids[:, -1:]], dim=1)
        obs_ids = torch.where(linked[:, None], prev, torch.where(shifted[:, None], shifted_ids, obs_run_ids))
        next_run_ids = (base + obs_count[:, -1])[:, None] + next_count - next_new.long()
        next_ids = torch.where(rolled[:, None], torch.cat([obs_ids[:, 1:], next_run_ids[:, -1:]], dim=1), next_run_ids)

        # Every position of an unlinked stack writes (run members write identical pixels to one slot).
        obs_writes = ~linked[:, None] & (~shifted[:, None] | last)
        next_writes = ~rolled[:, None] | last
        scratch = ring_start + frame_capacity  # (B, 1)
        self.words.index_copy_(0, torch.where(obs_writes, ring_start + obs_ids % frame_capacity, scratch).flatten(), obs.flatten(0, 1))
        self.words.index_copy_(
            0, torch.where(next_writes, ring_start + next_ids % frame_capacity, scratch).flatten(), next_obs.flatten(0, 1)
        )
        self.written.index_add_(0, member, per_row)
        self.rows_written += counts

        if "env" in rows:
            self.env_next_ids[env] = next_ids
        self._write_rows(where, {"ids": torch.cat([obs_ids, next_ids], dim=1), **{k: rows[k] for k in self.fields}})
        if isinstance(where, slice):
            self.newest.fill_(where.stop - 1)
        else:  # each member's last row of this write
            last_row = torch.full_like(self.newest, -1).scatter_reduce_(0, member, torch.arange(n, device=self.device), "amax")
            self.newest.copy_(torch.where(last_row >= 0, where[last_row.clamp(min=0)] - self._member_ids * self.capacity, self.newest))

    def _as_words(self, stacks: Tensor, n: int) -> Tensor:
        stacks = stacks.to(self.device, torch.uint8, non_blocking=True).reshape(n, self.stack, -1).contiguous()
        return stacks.view(self.word)  # (B, S, W)

    def _gather(self, ids: Tensor, ring_start: Tensor) -> Tensor:
        """(B, S, H, W) uint8 frames for (B, S) ids in the rings starting at frame slots `ring_start` (B, 1)."""
        return self.words[ring_start + ids % self.frame_capacity].view(torch.uint8).reshape(*ids.shape, *self.frame_shape)

    def _write_rows(self, where: slice | Tensor, rows: Mapping[str, Tensor]) -> None:
        for name, value in rows.items():
            storage = self.ids if name == "ids" else self.fields[name]
            value = value.to(self.device, storage.dtype, non_blocking=True)
            if isinstance(where, slice):
                storage[where].copy_(value)
            else:
                storage.index_copy_(0, where, value)

    def _member_of(self, index: Tensor) -> Tensor:
        return torch.div(index, self.capacity, rounding_mode="floor")

    def _valid(self, ids: Tensor, member: Tensor) -> Tensor:
        return ids.min(1).values >= self.written.index_select(0, member) - self.frame_capacity

    def valid(self, index: Tensor) -> Tensor:
        """(B,) bool: the rows at flat `index` still have every frame of their stacks in their member's ring."""
        return self._valid(self.ids.index_select(0, index), self._member_of(index))

    def newest_rows(self, index: Tensor) -> Tensor:
        """(B,) int64: the newest flat row of the member of each row at `index` (always valid)."""
        return self._newest(self._member_of(index))

    def _newest(self, member: Tensor) -> Tensor:
        return member * self.capacity + self.newest.index_select(0, member)

    def read(self, index: Tensor) -> dict[str, Tensor]:
        """Rows at flat `index` (B,) int64, with obs/next_obs rebuilt as (B, stack, H, W) uint8 stacks."""
        member = self._member_of(index)  # (B,)
        valid = self._valid(self.ids.index_select(0, index), member)
        index = torch.where(valid, index, self._newest(member))  # rows whose frames were overwritten read their member's newest
        ids, ring_start = self.ids.index_select(0, index), (member * (self.frame_capacity + 1))[:, None]  # (B, 2S), (B, 1)
        return {
            "obs": self._gather(ids[:, : self.stack], ring_start),
            "next_obs": self._gather(ids[:, self.stack :], ring_start),
            **{name: storage.index_select(0, index) for name, storage in self.fields.items()},
        }

    def member(self, k: int) -> FrameStorage:
        """Member k's rows, frames and counters as a K = 1 storage of views (nothing allocated, nothing copied)."""
        view = copy.copy(self)  # the sizes and constants; `_bind` replaces every tensor with member k's views
        view._bind({name: t[k : k + 1] for name, t in self.stacked.items()})
        return view

    def keep(self, slots: Sequence[int]) -> None:
        """Go on with the members at `slots` only (a copy of their rows and frames; views handed out keep theirs)."""
        index = torch.tensor(list(slots), dtype=torch.int64, device=self.device)
        self._bind({name: t.index_select(0, index) for name, t in self.stacked.items()})

    def state_dict(self, size: int) -> dict[str, Any]:
        """Every tensor and counter of a K = 1 storage (all of the frame ring: `size` rows can reach any of it)."""
        return {
            "frames": self.frames[0].clone(),
            "ids": self.ids.clone(),
            "env_next_ids": self.env_next_ids.clone(),
            "written": self.written[0].clone(),
            "newest_row": self.newest[0].clone(),
            "rows_written": int(self.rows_written[0]),
            "fields": {name: t.clone() for name, t in self.fields.items()},
        }

    def load_state_dict(self, state: Mapping[str, Any], size: int) -> None:
        targets = {"frames": self.frames[0], "ids": self.ids, "env_next_ids": self.env_next_ids, "written": self.written[0]}
        for name, target in targets.items():
            if tuple(state[name].shape) != tuple(target.shape):
                raise ValueError(f"saved frame storage {name!r} is {tuple(state[name].shape)}, this one's {tuple(target.shape)}")
            target.copy_(state[name])
        for name, storage in self.fields.items():
            storage.copy_(state["fields"][name])
        self.newest.fill_(int(state["newest_row"]))
        self.rows_written.fill_(int(state["rows_written"]))


def wants_frame_storage(replay_storage: str, env_id: str, obs_shape: tuple[int, ...], obs_dtype: torch.dtype) -> bool:
    """`frames` for `replay_storage="frames"`, or `auto` with an ALE id; only (stack, H, W) uint8 fits."""
    wanted = replay_storage == "frames" or (replay_storage == "auto" and is_atari(env_id))
    if wanted and (len(obs_shape) != 3 or obs_dtype != torch.uint8):
        raise ConfigError(f"replay_storage=frames needs (stack, H, W) uint8 observations; {env_id} gives {obs_shape} {obs_dtype}")
    return wanted


def frame_storage(
    cfg: Config, obs_shape: tuple[int, ...], obs_dtype: torch.dtype, device: torch.device, members: int = 1
) -> FrameStorage | None:
    """The frame storage of `members` runs shaped like `cfg` where `cfg` wants one (`wants_frame_storage`), else None."""
    if not wants_frame_storage(cfg.replay_storage, cfg.env_id, obs_shape, obs_dtype):
        return None
    if cfg.n_step > 1:
        raise ConfigError(f"n_step={cfg.n_step} needs --replay-storage tensor: frame storage keeps no per-row discount")
    stack, height, width = obs_shape
    return FrameStorage(cfg.buffer_capacity, (height, width), stack, cfg.num_envs, device, members=members)


def frame_replay_buffer(
    capacity: int, obs_shape: tuple[int, ...], num_envs: int, device: torch.device | str, seed: int = 0
) -> ReplayBuffer:
    """A uniform `ReplayBuffer` over a `FrameStorage` for (stack, H, W) uint8 observations."""
    stack, height, width = obs_shape
    storage = FrameStorage(capacity, (height, width), stack, num_envs, device)
    return ReplayBuffer(storage, UniformSampler(storage.device, seed))
