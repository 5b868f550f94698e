from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from configs import quiet_config

from fastdqn import ReplayBuffer, train
from fastdqn.buffer import FIELDS
from fastdqn.config import ConfigError
from fastdqn.envs import gymnasium_vector_env, valid_rows
from fastdqn.frames import FrameStorage, frame_replay_buffer, wants_frame_storage

SIZE = 6  # framestack_env.SIZE


def rollout(env_id: str, num_envs: int, steps: int, seed: int = 0) -> Iterator[dict[str, torch.Tensor]]:
    """The rows the train loop would extend, step by step: autoreset steps dropped, env ids attached."""
    envs = gymnasium_vector_env(env_id, num_envs, "sync")
    obs, _ = envs.reset(seed=seed)
    prev_done = np.zeros(num_envs, dtype=bool)
    rng = np.random.default_rng(seed)
    try:
        for _ in range(steps):
            actions = rng.integers(0, envs.single_action_space.n, num_envs)
            next_obs, rewards, terminated, truncated, _ = envs.step(actions)
            rows = {
                "obs": torch.from_numpy(obs),
                "action": torch.from_numpy(actions),
                "reward": torch.from_numpy(rewards).float(),
                "next_obs": torch.from_numpy(next_obs),
                "terminated": torch.from_numpy(terminated),
                "env": torch.arange(num_envs),
            }
            keep = valid_rows(prev_done)
            if keep is not None:
                rows = {name: value[torch.from_numpy(keep)] for name, value in rows.items()}
            yield rows
            prev_done = terminated | truncated
            obs = next_obs
    finally:
        envs.close()


def frame_and_reference(capacity: int, num_envs: int, device: str, frame_capacity: int | None = None) -> tuple[ReplayBuffer, ReplayBuffer]:
    storage = FrameStorage(capacity, (SIZE, SIZE), 4, num_envs, device, frame_capacity)
    return ReplayBuffer(storage), ReplayBuffer.create(capacity, (4, SIZE, SIZE), torch.uint8, device)


def assert_rows_equal(frames: ReplayBuffer, reference: ReplayBuffer) -> None:
    """Every stored row (the ones read would return) equals the row the env produced."""
    assert len(frames) == len(reference)
    storage = frames.storage
    assert isinstance(storage, FrameStorage)
    index = torch.arange(len(reference), device=reference.device)
    got = storage.read(index)
    want = reference.storage.read(torch.where(storage.valid(index), index, storage.newest_rows(index)))
    for name in FIELDS:
        assert torch.equal(got[name], want[name]), name


@pytest.mark.parametrize("env_id", ["framestack_env:Frames-v0", "framestack_env:ZeroPadFrames-v0"])
@pytest.mark.parametrize("num_envs", [1, 3])
def test_frame_storage_rebuilds_every_stack_the_env_returned(env_id: str, num_envs: int, device: str) -> None:
    frames, reference = frame_and_reference(48, num_envs, device)
    for rows in rollout(env_id, num_envs, 250):
        frames.extend(rows)
        reference.extend(rows)
        assert_rows_equal(frames, reference)
    storage = frames.storage
    assert isinstance(storage, FrameStorage)
    assert bool(storage.valid(torch.arange(48, device=device)).all())  # the default margin covers these episodes
    assert storage.written.item() > 2 * storage.frame_capacity  # the frame ring wrapped twice
    assert frames.writer.size == 48 and 250 * num_envs > 2 * 48  # and so did the row ring


def test_frame_storage_stores_about_one_frame_per_transition() -> None:
    frames, _ = frame_and_reference(4096, 4, "cpu")
    unlinked, _ = frame_and_reference(4096, 4, "cpu")
    starts = 0
    for rows in rollout("framestack_env:Frames-v0", 4, 300):
        frames.extend(rows)
        unlinked.extend({name: value for name, value in rows.items() if name != "env"})
        starts += int((rows["obs"] == rows["obs"][:, -1:]).flatten(1).all(1).sum())
    linked_storage, unlinked_storage = frames.storage, unlinked.storage
    assert isinstance(linked_storage, FrameStorage) and isinstance(unlinked_storage, FrameStorage)
    # one frame per transition plus one per episode start (its repeated first frame)
    assert linked_storage.written.item() <= linked_storage.rows_written + starts
    assert linked_storage.frames_per_row() < 1.5
    assert unlinked_storage.frames_per_row() > 1.9  # without env ids each row keeps its own obs


def test_frame_storage_without_env_ids_is_still_exact(device: str) -> None:
    frames, reference = frame_and_reference(40, 2, device)
    for rows in rollout("framestack_env:ZeroPadFrames-v0", 2, 60, seed=3):
        rows = {name: value for name, value in rows.items() if name != "env"}
        frames.extend(rows)
        reference.extend(rows)
    assert_rows_equal(frames, reference)


def test_frame_storage_never_returns_rows_whose_frames_were_overwritten(device: str) -> None:
    frames, reference = frame_and_reference(64, 2, device, frame_capacity=72)  # too few frames for 64 rows
    saw_invalid = False
    for rows in rollout("framestack_env:Frames-v0", 2, 120, seed=1):
        frames.extend(rows)
        reference.extend(rows)
        assert_rows_equal(frames, reference)
        storage = frames.storage
        assert isinstance(storage, FrameStorage)
        saw_invalid |= not bool(storage.valid(torch.arange(len(frames), device=device)).all())
    assert saw_invalid
    batch = frames.sample_tensors(256)
    assert batch.obs.shape == (256, 4, SIZE, SIZE) and batch.obs.dtype == torch.uint8


def test_frame_storage_links_a_stack_shifted_by_one_unseen_step() -> None:
    """The step after an Atari life loss is dropped, but ale-py's stack keeps rolling through it."""
    seq = torch.arange(1, 8, dtype=torch.uint8)[:, None, None].expand(7, SIZE, SIZE)  # frames a..g
    storage = FrameStorage(8, (SIZE, SIZE), 4, 1, "cpu")
    buffer = ReplayBuffer(storage)

    def row(t: int) -> dict[str, torch.Tensor]:
        return {
            "obs": seq[t : t + 4][None],
            "next_obs": seq[t + 1 : t + 5][None],
            "action": torch.tensor([t]),
            "reward": torch.tensor([0.0]),
            "terminated": torch.tensor([False]),
            "env": torch.tensor([0]),
        }

    buffer.extend(row(0))  # a fresh stack: 4 obs frames + 1 new frame
    buffer.extend(row(2))  # one step unseen: reuses 3, writes 2
    assert storage.written.item() == 7
    got = storage.read(torch.tensor([0, 1]))
    assert torch.equal(got["obs"][1], seq[2:6]) and torch.equal(got["next_obs"][1], seq[3:7])


def test_frame_storage_nbytes_close_to_one_frame_per_transition() -> None:
    capacity = 20_000
    storage = FrameStorage(capacity, (84, 84), 4, 16, "cpu")
    per_transition = storage.nbytes / capacity
    assert per_transition < 1.1 * 84 * 84  # ~7.5 KB
    assert per_transition * 1_000_000 < 8e9  # a 1M-transition Atari buffer fits in 8 GB
    naive = ReplayBuffer.create(1_000, (4, 84, 84), torch.uint8, "cpu").nbytes / 1_000
    assert naive / per_transition > 7.0  # ~56 KB stored naively


def test_wants_frame_storage_for_ale_ids_and_uint8_stacks_only() -> None:
    assert wants_frame_storage("auto", "ALE/Pong-v5", (4, 84, 84), torch.uint8)
    assert not wants_frame_storage("auto", "framestack_env:Frames-v0", (4, SIZE, SIZE), torch.uint8)
    assert not wants_frame_storage("tensor", "ALE/Pong-v5", (4, 84, 84), torch.uint8)
    with pytest.raises(ConfigError, match="uint8"):
        wants_frame_storage("frames", "CartPole-v1", (4,), torch.float32)


def test_train_links_frames_through_env_ids(tmp_path: Path) -> None:
    cfg = quiet_config(
        tmp_path,
        env_id="framestack_env:Frames-v0",
        replay_storage="frames",
        num_envs=4,
        total_steps=800,
        learning_starts=200,
        batch_size=16,
        buffer_capacity=512,
    )
    result = train(cfg)
    storage = result.buffer.storage
    assert isinstance(storage, FrameStorage)
    assert result.agent.updates > 0
    assert storage.frames_per_row() < 1.5  # rows linked: the loop passed env ids


def test_frame_replay_buffer_samples_stacks_as_tensordict() -> None:
    buffer = frame_replay_buffer(32, (4, SIZE, SIZE), 2, "cpu", seed=0)
    for rows in rollout("framestack_env:Frames-v0", 2, 20):
        buffer.extend(rows)
    batch = buffer.sample(8)
    assert batch["obs"].shape == (8, 4, SIZE, SIZE) and batch["next_obs"].dtype == torch.uint8


def test_frame_storage_keeps_next_obs_that_is_not_a_one_step_roll() -> None:
    """n-step rows pair s_t with s_{t+n}: next_obs is then stored as a stack of its own."""
    seq = torch.arange(1, 12, dtype=torch.uint8)[:, None, None].expand(11, SIZE, SIZE)
    storage = FrameStorage(8, (SIZE, SIZE), 4, 1, "cpu")
    for t in range(4):
        rows = {
            "obs": seq[t : t + 4][None],
            "next_obs": seq[t + 3 : t + 7][None],  # three steps ahead
            "action": torch.tensor([t]),
            "reward": torch.tensor([0.0]),
            "terminated": torch.tensor([False]),
            "env": torch.tensor([0]),
        }
        storage.write(slice(t, t + 1), rows)
    got = storage.read(torch.arange(4))
    for t in range(4):
        assert torch.equal(got["obs"][t], seq[t : t + 4]) and torch.equal(got["next_obs"][t], seq[t + 3 : t + 7])


def test_frame_buffer_state_dict_round_trip_restores_every_stack(tmp_path: Path) -> None:
    frames, _ = frame_and_reference(64, 3, "cpu")
    for rows in rollout("framestack_env:Frames-v0", 3, 50):
        frames.extend(rows)
    path = tmp_path / "buffer.pt"
    torch.save(frames.state_dict(), path)
    restored, _ = frame_and_reference(64, 3, "cpu")
    restored.load_state_dict(torch.load(path, weights_only=True))
    index = torch.arange(len(frames))
    for name in FIELDS:
        assert torch.equal(restored.storage.read(index)[name], frames.storage.read(index)[name]), name
    assert torch.equal(restored.sample_tensors(32).obs, frames.sample_tensors(32).obs)
