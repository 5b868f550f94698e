from __future__ import annotations

import pytest
import torch

from fastdqn import ReplayBuffer
from fastdqn.config import ConfigError


def rows(start: int, n: int, obs_dim: int = 3, device: str = "cpu") -> dict[str, torch.Tensor]:
    """n transitions whose every field encodes its sequence number start..start+n-1."""
    ids = torch.arange(start, start + n, device=device)
    return {
        "obs": ids.float().unsqueeze(1).repeat(1, obs_dim),
        "action": ids % 7,
        "reward": ids.float() * 0.5,
        "next_obs": (ids.float() + 0.25).unsqueeze(1).repeat(1, obs_dim),
        "terminated": ids % 3 == 0,
    }


def stored_ids_in_order(buffer: ReplayBuffer) -> list[int]:
    """Sequence numbers from the oldest stored row to the newest."""
    obs = buffer.storage.fields["obs"][:, 0]
    order = torch.arange(len(buffer), device=obs.device)
    if len(buffer) == buffer.capacity:
        order = (buffer.writer.cursor + order) % buffer.capacity
    return obs[order].long().tolist()


def test_ring_writer_wraps_cursor_when_full(device: str) -> None:
    buffer = ReplayBuffer.create(10, (3,), device=device)
    buffer.extend(rows(0, 7, device=device))
    buffer.extend(rows(7, 6, device=device))  # crosses the end of the ring
    assert len(buffer) == 10
    assert buffer.writer.cursor == 3
    assert stored_ids_in_order(buffer) == list(range(3, 13))
    storage = buffer.storage.fields
    assert storage["obs"][:3, 0].tolist() == [10.0, 11.0, 12.0]  # wrapped rows overwrote the oldest
    assert storage["action"].tolist() == [i % 7 for i in [10, 11, 12, 3, 4, 5, 6, 7, 8, 9]]


def test_extend_larger_than_capacity_keeps_newest_rows_in_order(device: str) -> None:
    buffer = ReplayBuffer.create(8, (3,), device=device)
    buffer.extend(rows(0, 5, device=device))
    buffer.extend(rows(5, 21, device=device))  # 21 > capacity 8
    assert len(buffer) == 8
    assert stored_ids_in_order(buffer) == list(range(18, 26))
    assert buffer.writer.cursor == 26 % 8


def test_every_field_keeps_its_row_together(device: str) -> None:
    buffer = ReplayBuffer.create(16, (3,), device=device)
    for start in range(0, 40, 5):
        buffer.extend(rows(start, 5, device=device))
    f = buffer.storage.fields
    ids = f["obs"][:, 0].long()
    assert torch.equal(f["action"], ids % 7)
    assert torch.equal(f["reward"], ids.float() * 0.5)
    assert torch.equal(f["next_obs"][:, 0], ids.float() + 0.25)
    assert torch.equal(f["terminated"], ids % 3 == 0)


def test_sampler_never_returns_unwritten_slots(device: str) -> None:
    buffer = ReplayBuffer.create(1000, (3,), device=device, seed=3)
    buffer.extend(rows(1, 37, device=device))  # ids 1..37; unwritten rows hold zeros
    batch = buffer.sample_tensors(4096)
    ids = batch.obs[:, 0]
    assert ids.min().item() >= 1 and ids.max().item() <= 37
    assert len(torch.unique(ids)) == 37  # and all filled rows are reachable


def test_sample_returns_tensordict_with_fields_dtypes_and_device(device: str) -> None:
    buffer = ReplayBuffer.create(64, (3,), device=device)
    buffer.extend(rows(0, 20, device=device))
    batch = buffer.sample(32)
    assert batch.batch_size == torch.Size([32])
    assert set(batch.keys()) == {"obs", "action", "reward", "next_obs", "terminated"}
    assert batch["obs"].shape == (32, 3) and batch["obs"].dtype == torch.float32
    assert batch["action"].dtype == torch.int64 and batch["reward"].dtype == torch.float32
    assert batch["terminated"].dtype == torch.bool
    for value in batch.values():
        assert value.device.type == device
    assert torch.equal(batch["next_obs"], batch["obs"] + 0.25)  # rows sampled whole


def test_uint8_observations_stay_uint8_and_nbytes_counts_them() -> None:
    buffer = ReplayBuffer.create(100, (4, 84, 84), obs_dtype=torch.uint8)
    assert buffer.storage.fields["obs"].dtype == torch.uint8
    per_row = 2 * 4 * 84 * 84 + 8 + 4 + 1  # obs + next_obs + int64 action + float reward + bool
    assert buffer.nbytes == 100 * per_row
    frames = torch.randint(0, 256, (5, 4, 84, 84), dtype=torch.uint8)
    buffer.extend(
        {
            "obs": frames,
            "action": torch.zeros(5, dtype=torch.int64),
            "reward": torch.zeros(5),
            "next_obs": frames,
            "terminated": torch.zeros(5, dtype=torch.bool),
        }
    )
    assert torch.equal(buffer.storage.fields["obs"][:5], frames)


def test_extend_converts_dtype_and_device_of_incoming_rows(device: str) -> None:
    buffer = ReplayBuffer.create(8, (2,), device=device)
    buffer.extend(
        {
            "obs": torch.ones(3, 2, dtype=torch.float64),
            "action": torch.tensor([1, 0, 1], dtype=torch.int32),
            "reward": torch.ones(3, dtype=torch.float64),
            "next_obs": torch.ones(3, 2),
            "terminated": torch.tensor([0, 1, 0]),
        }
    )
    assert buffer.storage.fields["terminated"][:3].tolist() == [False, True, False]
    assert buffer.storage.fields["action"][:3].tolist() == [1, 0, 1]


def test_sampling_is_reproducible_for_a_seed(device: str) -> None:
    draws = []
    for _ in range(2):
        buffer = ReplayBuffer.create(100, (3,), device=device, seed=7)
        buffer.extend(rows(0, 100, device=device))
        draws.append(buffer.sample_tensors(50).obs[:, 0].tolist())
    assert draws[0] == draws[1]


def test_state_dict_round_trip_restores_rows_cursor_and_sampler(device: str) -> None:
    buffer = ReplayBuffer.create(10, (3,), device=device, seed=1)
    buffer.extend(rows(0, 13, device=device))
    buffer.sample_tensors(4)
    state = buffer.state_dict()
    restored = ReplayBuffer.create(10, (3,), device=device, seed=99)
    restored.load_state_dict(state)
    assert len(restored) == 10 and restored.writer.cursor == buffer.writer.cursor
    assert stored_ids_in_order(restored) == stored_ids_in_order(buffer)
    assert torch.equal(restored.sample_tensors(20).obs, buffer.sample_tensors(20).obs)


def test_errors_on_mismatched_rows_and_empty_sample() -> None:
    buffer = ReplayBuffer.create(10, (3,))
    with pytest.raises(ValueError, match="empty"):
        buffer.sample_tensors(4)
    bad = rows(0, 4)
    bad["reward"] = bad["reward"][:3]
    with pytest.raises(ValueError, match="reward"):
        buffer.extend(bad)


def test_buffer_that_cannot_fit_in_memory_is_refused_before_allocating() -> None:
    with pytest.raises(ConfigError, match=r"GiB.*lower --buffer-capacity"):
        ReplayBuffer.create(10**12, (4, 84, 84), obs_dtype=torch.uint8)
