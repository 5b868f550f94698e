"""A single run's learner and evaluator with the engine's member interface (K = 1).

`SingleLearner` is a thin adapter over one `DQNAgent`: it samples with `sample_tensors`, updates
with the agent's own `update` (the written-out mm kernels, or `--compile`), and keeps the agent's
tensors where the collector (fused or captured) reads them, so a single run trains bit for bit as
it did before the engine was shared. `MemberAgents` (members.py) is the learner of K >= 1 members.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from fastdqn.agent import DQNAgent
from fastdqn.buffer import Batch, ReplayBuffer
from fastdqn.evaluate import Evaluation, Evaluator
from fastdqn.per import PrioritizedSampler

Stats = dict[str, torch.Tensor]


class SingleLearner:
    """One `DQNAgent` as the engine's learner of K = 1 members (slot 0)."""

    def __init__(self, agent: DQNAgent):
        self.agent = agent

    @property
    def updates(self) -> np.ndarray:
        return np.array([self.agent.updates], dtype=np.int64)

    def sample(self, replay: ReplayBuffer, batch_size: int, active: np.ndarray) -> Batch:
        return replay.sample_tensors(batch_size)

    def update(self, batch: Batch, active: np.ndarray) -> Stats:
        return self.agent.update(batch)

    def set_learning_rates(self, rates: Sequence[float]) -> None:
        self.agent.optimizer.set_lr(rates)

    def reprioritize(self, replay: ReplayBuffer, batch: Batch, stats: Stats, active: np.ndarray) -> None:
        if isinstance(replay.sampler, PrioritizedSampler) and batch.storage_index is not None:
            replay.update_priorities(batch.storage_index, stats["td_error"].abs())

    def finite(self, stats: Stats | None) -> np.ndarray:
        """(1,) bool: the weights and the last loss are finite (one host sync)."""
        finite = torch.isfinite(self.agent.online.data).all()
        if stats is not None:
            finite &= torch.isfinite(stats["loss"])
        return finite.reshape(1).cpu().numpy()

    def member_stats(self, stats: Stats | None, slot: int) -> Stats | None:
        return stats

    def export(self, slot: int) -> DQNAgent:
        return self.agent

    def keep(self, slots: Sequence[int]) -> None:
        """A single run never shrinks: when its one member stops, the loop ends."""

    def state_dict(self) -> dict[str, Any]:
        return self.agent.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.agent.load_state_dict(state)


class SingleEvaluator:
    """A run's `Evaluator` with the engine's interface: one evaluation per member (one member)."""

    def __init__(self, evaluator: Evaluator, target: float | None):
        self.evaluator, self.target = evaluator, target

    def run(self, members: SingleLearner) -> list[Evaluation]:
        return [self.evaluator.run(members.agent, self.target)]  # stops early once it cannot pass

    def keep(self, slots: Sequence[int]) -> None:
        """A single run's evaluator is never shrunk."""

    def close(self) -> None:
        self.evaluator.close()
