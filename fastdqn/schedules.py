"""Exploration and learning-rate schedules: pure functions of the env step, so a resumed run picks up exactly."""

from __future__ import annotations

import math

from fastdqn.config import Config


def linear_schedule(start: float, end: float, duration: int, step: int) -> float:
    """`start` at step 0, `end` from step `duration` on, a straight line between."""
    fraction = min(max(step, 0) / duration, 1.0)
    return start + fraction * (end - start)


def exponential_schedule(start: float, end: float, decay: int, step: int) -> float:
    """The tutorial's `end + (start - end) * exp(-step / decay)`."""
    return end + (start - end) * math.exp(-max(step, 0) / decay)


def piecewise_schedule(start: float, mid: float, end: float, first: int, second: int, step: int) -> float:
    """`start` -> `mid` over `first` steps, then `mid` -> `end` over `second` more, then `end`."""
    if step < first:
        return linear_schedule(start, mid, first, step)
    return linear_schedule(mid, end, second, step - first)


def epsilon_at(cfg: Config, env_step: int) -> float:
    if cfg.exploration == "piecewise":
        return piecewise_schedule(
            cfg.epsilon_start, cfg.epsilon_end, cfg.epsilon_late, cfg.epsilon_decay_steps, cfg.epsilon_late_steps, env_step
        )
    schedule = linear_schedule if cfg.exploration == "linear" else exponential_schedule
    return schedule(cfg.epsilon_start, cfg.epsilon_end, cfg.epsilon_decay_steps, env_step)


def learning_rate_at(cfg: Config, env_step: int) -> float:
    """Adam's step size at `env_step`: `learning_rate`, or a line from it to `learning_rate_end` at total_steps.

    The line starts at env step 0, not at learning_starts: like epsilon and PER's beta it is then a
    function of the env step and the budget alone, and it is SB3's (rl-zoo's `lin_`) schedule, which
    runs on the progress `num_timesteps / total_timesteps`. learning_starts is 1% of the classic
    budgets, so the first update steps at 99% of `learning_rate`.
    """
    if cfg.learning_rate_end is None:
        return cfg.learning_rate
    return linear_schedule(cfg.learning_rate, cfg.learning_rate_end, cfg.total_steps, env_step)
