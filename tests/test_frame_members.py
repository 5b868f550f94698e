"""Frame storage with a member axis: member k of a group stores, and samples, what its single run does."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
import torch
from test_frames import SIZE, rollout

from fastdqn import ReplayBuffer
from fastdqn.buffer import FIELDS, UniformSampler
from fastdqn.frames import FrameStorage

N = 2  # envs per member
SEEDS = (3, 11, 40)  # framestack_env draws each env's seed (seed + i) into pixel (0, 2) of its frames


def group_buffer(k: int, capacity: int, device: str, frame_capacity: int | None = None) -> ReplayBuffer:
    storage = FrameStorage(capacity, (SIZE, SIZE), 4, N, device, frame_capacity, members=k)
    return ReplayBuffer(storage, [UniformSampler(device, seed) for seed in SEEDS[:k]])


def single_buffer(capacity: int, device: str, seed: int, frame_capacity: int | None = None) -> ReplayBuffer:
    storage = FrameStorage(capacity, (SIZE, SIZE), 4, N, device, frame_capacity)
    return ReplayBuffer(storage, UniformSampler(device, seed))


def group_rows(parts: Sequence[dict[str, torch.Tensor]]) -> tuple[dict[str, torch.Tensor], np.ndarray]:
    """One vector step of K members' envs, as MemberSource writes it: member k's env ids are k*N..k*N+N-1."""
    rows = {name: torch.cat([{**part, "env": part["env"] + k * N}[name] for k, part in enumerate(parts)]) for name in parts[0]}
    return rows, np.concatenate([np.full(len(part["action"]), k) for k, part in enumerate(parts)])


def assert_same_storage(member: FrameStorage, single: FrameStorage) -> None:
    """Frames (scratch slot aside), ids, counters and rows all equal, and every row reads back the same."""
    assert torch.equal(member.frames[0, :-1], single.frames[0, :-1])
    for name in ("ids", "env_next_ids", "written", "newest", "rows_written"):
        assert torch.equal(getattr(member, name), getattr(single, name)), name
    for name in ("action", "reward", "terminated"):
        assert torch.equal(member.fields[name], single.fields[name]), name
    index = torch.arange(member.capacity, device=member.device)
    got, want = member.read(index), single.read(index)
    for name in FIELDS:
        assert torch.equal(got[name], want[name]), name


@pytest.mark.parametrize("env_id", ["framestack_env:Frames-v0", "framestack_env:ZeroPadFrames-v0"])
@pytest.mark.parametrize("frame_capacity", [None, 40])  # 40: the frame rings wrap over live rows
def test_each_member_stores_and_samples_what_its_single_run_does(env_id: str, frame_capacity: int | None, device: str) -> None:
    k, capacity = 3, 36
    group = group_buffer(k, capacity, device, frame_capacity)
    singles = [single_buffer(capacity, device, seed, frame_capacity) for seed in SEEDS]
    streams = [rollout(env_id, N, 90, seed=seed) for seed in SEEDS]
    for step, parts in enumerate(zip(*streams, strict=True)):
        rows, members = group_rows(parts)
        group.extend(rows, members)
        for single, part in zip(singles, parts, strict=True):
            single.extend(part)
        if step % 10 == 9:
            batch = group.sample_members(16, np.ones(k, dtype=bool))
            for m, single in enumerate(singles):
                want = single.sample_tensors(16)
                assert torch.equal(batch.storage_index[m], want.storage_index)
                for name in FIELDS:
                    assert torch.equal(getattr(batch, name)[m], getattr(want, name)), name
    storage = group.storage
    assert isinstance(storage, FrameStorage)
    for m, single in enumerate(singles):
        view = group.member(m)
        assert isinstance(view.storage, FrameStorage) and isinstance(single.storage, FrameStorage)
        assert_same_storage(view.storage, single.storage)
        assert (view.writer.cursor, view.writer.size) == (single.writer.cursor, capacity)
    if frame_capacity is not None:
        assert not bool(storage.valid(torch.arange(k * capacity, device=device)).all())  # some rows read their member's newest row


def test_a_members_sampled_stacks_come_from_its_own_envs_only(device: str) -> None:
    k = 3
    group = group_buffer(k, 64, device)
    for parts in zip(*(rollout("framestack_env:Frames-v0", N, 60, seed=seed) for seed in SEEDS), strict=True):
        group.extend(*group_rows(parts))
    batch = group.sample_members(128, np.ones(k, dtype=bool))
    for m, seed in enumerate(SEEDS):
        own = {seed + i for i in range(N)}  # each env's seed sits in pixel (0, 2) of every frame it draws
        for stacks in (batch.obs[m], batch.next_obs[m]):
            assert set(stacks[:, :, 0, 2].unique().tolist()) <= own
    inactive = group.sample_members(8, np.array([True, False, True]))
    assert torch.equal(inactive.storage_index[1], torch.zeros(8, dtype=torch.int64, device=device))  # a frozen member draws nothing


def test_a_member_leaving_keeps_the_others_frames_and_they_go_on_as_their_single_runs(device: str) -> None:
    k, capacity = 3, 40
    group = group_buffer(k, capacity, device)
    singles = [single_buffer(capacity, device, seed) for seed in SEEDS]
    streams = [rollout("framestack_env:Frames-v0", N, 100, seed=seed) for seed in SEEDS]
    for _ in range(30):
        parts = [next(stream) for stream in streams]
        group.extend(*group_rows(parts))
        for single, part in zip(singles, parts, strict=True):
            single.extend(part)
    left = group.member(1).storage  # a view handed out before member 1 leaves keeps its rows
    group.keep([0, 2])
    kept = [singles[0], singles[2]]
    for _ in range(40):  # member 2 now sits in slot 1: its envs are rows N..2N-1
        parts = [next(streams[0]), next(streams[2])]
        group.extend(*group_rows(parts))
        for single, part in zip(kept, parts, strict=True):
            single.extend(part)
    for slot, single in enumerate(kept):
        view, want = group.member(slot).storage, single.storage
        assert isinstance(view, FrameStorage) and isinstance(want, FrameStorage)
        assert_same_storage(view, want)
        assert view.frames_per_row() < 1.5  # the kept members' env ids still link their rows
    assert isinstance(left, FrameStorage) and isinstance(singles[1].storage, FrameStorage)
    assert_same_storage(left, singles[1].storage)


def test_a_group_frame_buffer_state_round_trips_exactly(device: str) -> None:
    k = 2
    group, fresh = group_buffer(k, 32, device), group_buffer(k, 32, device)
    streams = [rollout("framestack_env:ZeroPadFrames-v0", N, 80, seed=seed) for seed in SEEDS[:k]]
    for _ in range(50):
        group.extend(*group_rows([next(stream) for stream in streams]))
    fresh.load_state_dict(group.state_dict())
    for _ in range(30):
        rows, members = group_rows([next(stream) for stream in streams])
        group.extend(rows, members)
        fresh.extend(rows, members)
    mine, theirs = group.storage, fresh.storage
    assert isinstance(mine, FrameStorage) and isinstance(theirs, FrameStorage)
    for name, tensor in mine.stacked.items():
        if name != "frames":
            assert torch.equal(tensor, theirs.stacked[name]), name
    assert torch.equal(mine.frames[:, :-1], theirs.frames[:, :-1])
    a, b = group.sample_members(24, np.ones(k, dtype=bool)), fresh.sample_members(24, np.ones(k, dtype=bool))
    for name in FIELDS:
        assert torch.equal(getattr(a, name), getattr(b, name)), name


def test_a_single_runs_frame_state_keeps_the_format_older_checkpoints_have() -> None:
    """K = 1 saves what frame storage saved before it had a member axis, and loads that (int counters too)."""
    buffer = single_buffer(32, "cpu", seed=0)
    stream = rollout("framestack_env:Frames-v0", N, 80, seed=4)
    for _ in range(40):
        buffer.extend(next(stream))
    state = buffer.state_dict()["storage"]
    storage = buffer.storage
    assert isinstance(storage, FrameStorage)
    assert state["frames"].shape == (storage.frame_capacity + 1, SIZE, SIZE) and state["written"].shape == ()
    assert state["ids"].shape == (32, 8) and state["env_next_ids"].shape == (N, 4) and isinstance(state["rows_written"], int)
    older = {**buffer.state_dict(), "storage": {**state, "newest_row": int(state["newest_row"])}}  # an int, as a slice write left it
    restored = single_buffer(32, "cpu", seed=0)
    restored.load_state_dict(older)
    for _ in range(20):
        rows = next(stream)
        buffer.extend(rows)
        restored.extend(rows)
    assert isinstance(restored.storage, FrameStorage)
    assert_same_storage(restored.storage, storage)
