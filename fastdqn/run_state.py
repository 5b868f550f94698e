"""What a training run carries: the loop's counters from step to step, and the run's result (its best evaluation and solve point)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastdqn.agent import DQNAgent
from fastdqn.buffer import ReplayBuffer

if TYPE_CHECKING:
    from fastdqn.config import Config
    from fastdqn.evaluate import Evaluation


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


def record_eval(result: RunResult, cfg: Config, evaluation: Evaluation, env_steps: int, start_time: float) -> bool:
    """Track the best evaluation and the solve point; True when this one is the best so far.

    An evaluation cut short (its mean could no longer reach `stop_at_return`) is logged, but its
    partial mean is no measure of the policy, so it neither solves nor competes for `best.pt`.
    """
    mean = float(evaluation.returns.mean())
    result.eval_history.append((env_steps, mean))
    if not evaluation.complete:
        return False
    if cfg.stop_at_return is not None and mean >= cfg.stop_at_return and result.solved_at_step is None:
        result.solved_at_step = env_steps
        result.solved_at_seconds = time.perf_counter() - start_time
    if result.best_eval_return is None or mean > result.best_eval_return:
        result.best_eval_return = mean
        return True
    return False
