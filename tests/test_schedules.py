from __future__ import annotations

import math

import pytest

import fastdqn
from fastdqn.schedules import epsilon_at, exponential_schedule, linear_schedule


@pytest.mark.parametrize(("step", "expected"), [(0, 1.0), (500, 0.55), (1000, 0.1), (5000, 0.1), (-3, 1.0)])
def test_linear_schedule_at_start_middle_end_and_beyond(step: int, expected: float) -> None:
    assert linear_schedule(1.0, 0.1, 1000, step) == pytest.approx(expected)


def test_exponential_schedule_is_the_tutorials_formula() -> None:
    assert exponential_schedule(0.95, 0.01, 500, 0) == pytest.approx(0.95)
    assert exponential_schedule(0.95, 0.01, 500, 500) == pytest.approx(0.01 + 0.94 * math.exp(-1))
    assert exponential_schedule(0.95, 0.01, 500, 100_000) == pytest.approx(0.01)


def test_epsilon_at_follows_the_configured_schedule() -> None:
    assert epsilon_at(fastdqn.preset("cartpole"), 4_000) == pytest.approx(0.52)
    tutorial = fastdqn.preset("tutorial")
    assert epsilon_at(tutorial, 500) == pytest.approx(exponential_schedule(0.95, 0.01, 500, 500))
