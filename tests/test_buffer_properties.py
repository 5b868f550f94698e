"""The ring buffer against a plain Python model: a FIFO of the newest `capacity` rows."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fastdqn import ReplayBuffer


@settings(max_examples=150, deadline=None)
@given(capacity=st.integers(1, 40), sizes=st.lists(st.integers(0, 100), min_size=1, max_size=25))
def test_ring_buffer_matches_a_fifo_of_the_newest_rows(capacity: int, sizes: list[int]) -> None:
    buffer = ReplayBuffer.create(capacity, (2,))
    model: list[int] = []
    next_id = 0
    for n in sizes:
        ids = torch.arange(next_id, next_id + n)
        next_id += n
        buffer.extend(
            {
                "obs": ids.float().unsqueeze(1).repeat(1, 2),
                "action": ids,
                "reward": ids.float(),
                "next_obs": ids.float().unsqueeze(1).repeat(1, 2) + 1,
                "terminated": ids % 2 == 0,
            }
        )
        model = (model + ids.tolist())[-capacity:]
        assert len(buffer) == len(model)
        order = (buffer.writer.cursor + torch.arange(len(buffer))) % capacity if len(buffer) == capacity else torch.arange(len(buffer))
        fields = buffer.storage.fields
        assert fields["action"][order].tolist() == model
        assert fields["obs"][order][:, 1].long().tolist() == model
        assert (fields["next_obs"][order][:, 0] - 1).long().tolist() == model
        assert fields["terminated"][order].tolist() == [i % 2 == 0 for i in model]
