"""The one loop (engine.py): exact resume with PER and n-step for K = 1 and K = 3, one finite check per
cadence point, and the cadence points of a local run where a `+= period` counter would have put them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from configs import quiet_config

import fastdqn
from fastdqn.config import Config
from fastdqn.engine import TrainingInterrupted, next_multiple
from fastdqn.group import read_group_configs, train_many
from fastdqn.learners import SingleLearner

DROP = ("wall_s", "sps")


def small(out: Path, **values: Any) -> Config:
    settings: dict[str, Any] = {"num_envs": 4, "total_steps": 1200, "learning_starts": 200, "buffer_capacity": 400, "batch_size": 32}
    settings |= {"target_update_every": 16, "epsilon_decay_steps": 800, "log_every_steps": 200, "checkpoint_every_steps": 400}
    settings |= {"per": True, "n_step": 3, "env_backend": "torch", "eval_every_steps": 400, "eval_episodes": 3}
    return quiet_config(out, **{**settings, **values})


def curve(result: fastdqn.RunResult) -> list[dict[str, Any]]:
    return [{k: v for k, v in row.items() if k not in DROP} for row in result.metrics]


def test_a_single_run_with_per_and_n_step_resumes_exactly(tmp_path: Path) -> None:
    whole = fastdqn.train(small(tmp_path, run_name="whole"))
    with pytest.raises(TrainingInterrupted):
        fastdqn.train(small(tmp_path, run_name="cut"), interrupt_at_step=600)  # the ring (400 rows) has wrapped by then
    resumed = fastdqn.train(small(tmp_path, run_name="cut"), resume=tmp_path / "cut")
    assert curve(resumed) == curve(whole)
    assert torch.equal(resumed.agent.online.data, whole.agent.online.data)
    assert torch.equal(resumed.agent.target.data, whole.agent.target.data)


def test_three_members_with_per_and_n_step_resume_exactly_one_of_them_frozen(tmp_path: Path) -> None:
    def members(name: str) -> list[Config]:
        base = small(tmp_path, run_name=name)
        return [base.replace(seed=1, stop_at_return=5.0), base.replace(seed=2), base.replace(seed=3, learning_rate=1e-3)]

    whole = train_many(members("whole"))
    with pytest.raises(TrainingInterrupted):
        train_many(members("cut"), interrupt_at_step=600)
    resumed = train_many(read_group_configs(tmp_path / "cut"), resume=tmp_path / "cut")
    assert whole[0].solved_at_step == 400 and [r.env_steps for r in whole] == [400, 1200, 1200]
    for mine, theirs in zip(resumed, whole, strict=True):
        assert curve(mine) == curve(theirs)
        assert torch.equal(mine.agent.online.data, theirs.agent.online.data)
        assert mine.solved_at_step == theirs.solved_at_step and mine.env_steps == theirs.env_steps


def test_the_cadence_checks_the_weights_once_per_cadence_point(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    checked: list[int] = []
    real = SingleLearner.finite

    def counting(self: SingleLearner, stats: Any) -> np.ndarray:
        checked.append(self.agent.updates)
        return real(self, stats)

    monkeypatch.setattr(SingleLearner, "finite", counting)
    # every 400 steps an evaluation, a log row and a checkpoint fall on one step: one check there, not three
    fastdqn.train(small(tmp_path, run_name="r", log_every_steps=400))
    assert len(checked) == 3  # env steps 400, 800, 1200


@pytest.mark.parametrize(("every", "num_envs"), [(200, 4), (100, 16), (10, 16), (7, 3)])
def test_next_cadence_point_is_where_a_period_counter_fires(every: int, num_envs: int) -> None:
    """A local step adds num_envs env steps: advancing to the next multiple fires at the same steps as `next += every`."""
    counter, jumped, fired_counter, fired_jump = every, every, [], []
    for env_steps in range(num_envs, 50 * every + 1, num_envs):
        if env_steps >= counter:
            fired_counter.append(env_steps)
            counter += every
        if env_steps >= jumped:
            fired_jump.append(env_steps)
            jumped = next_multiple(env_steps, every)
    assert fired_counter == fired_jump
