"""The classic tutorial's replay buffer: a `deque` of transition tuples, `random.sample`, `zip`.

Kept as the tutorial writes it (one Python tuple per transition, one `push` per env step); it is a
baseline, so it is neither fixed nor tuned. `sample_tensors` is the conversion the tutorial's update
does right after sampling: `torch.tensor(np.array(...))` per field.
"""

from __future__ import annotations

import random
from collections import deque
from typing import Any

import numpy as np
import torch


class ReplayBufferQue:
    """`deque(maxlen=capacity)` of `(state, action, reward, next_state, done)` tuples."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.buffer: deque[tuple[Any, ...]] = deque(maxlen=capacity)

    def push(self, transitions: tuple[Any, ...]) -> None:
        self.buffer.append(transitions)

    def sample(self, batch_size: int, sequential: bool = False) -> tuple[tuple[Any, ...], ...]:
        batch_size = min(batch_size, len(self.buffer))
        if sequential:
            start = random.randint(0, len(self.buffer) - batch_size)
            batch = [self.buffer[i] for i in range(start, start + batch_size)]
        else:
            batch = random.sample(self.buffer, batch_size)  # indexes the deque: O(len) per draw
        return tuple(zip(*batch, strict=True))

    def clear(self) -> None:
        self.buffer.clear()

    def __len__(self) -> int:
        return len(self.buffer)


def sample_tensors(memory: ReplayBufferQue, batch_size: int, device: torch.device | str = "cpu") -> tuple[torch.Tensor, ...]:
    """Sample and convert as the tutorial's `update` does: obs (B, 4) f32, action (B, 1) i64, reward (B,), next obs, done (B,)."""
    state_batch, action_batch, reward_batch, next_state_batch, done_batch = memory.sample(batch_size)
    states = torch.tensor(np.array(state_batch), device=device, dtype=torch.float)
    actions = torch.tensor(action_batch, device=device).unsqueeze(1)
    rewards = torch.tensor(reward_batch, device=device, dtype=torch.float)
    next_states = torch.tensor(np.array(next_state_batch), device=device, dtype=torch.float)
    dones = torch.tensor(np.float32(done_batch), device=device)
    return states, actions, rewards, next_states, dones
