"""What a training run carries: the loop's counters from step to step, and the run's result."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastdqn.agent import DQNAgent
from fastdqn.buffer import ReplayBuffer


@dataclass
class LoopState:
    """Everything the loop carries from one vector step to the next (saved in checkpoints)."""

    env_steps: int = 0
    vector_steps: int = 0
    next_eval: int = 0
    next_log: int = 0
    next_checkpoint: int = 0


@dataclass
class RunResult:
    agent: DQNAgent
    buffer: ReplayBuffer
    metrics: list[dict[str, Any]]
    run_dir: Path
    env_steps: int = 0
    wall_seconds: float = 0.0
    best_eval_return: float | None = None
    solved_at_step: int | None = None
    """First env step at which a greedy evaluation reached `stop_at_return`."""
    solved_at_seconds: float | None = None
    """Wall seconds from the start of the run to that evaluation."""
    eval_history: list[tuple[int, float]] = field(default_factory=list)
