"""Greedy evaluation: one vector env of episodes, cut short only when its mean can no longer reach the target."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from configs import quiet_config

import fastdqn
from fastdqn.envs import make_envs
from fastdqn.evaluate import Evaluator


def agent_for(env_id: str, seed: int = 0) -> fastdqn.DQNAgent:
    envs = make_envs(env_id, 1)
    return fastdqn.DQNAgent(quiet_config("unused", seed=seed, env_id=env_id), envs.spaces)


@pytest.mark.parametrize("backend", ["gymnasium", "torch"])
@pytest.mark.parametrize("env_id", ["CartPole-v1", "MountainCar-v0"])
def test_evaluation_stops_early_only_when_it_cannot_reach_the_target(env_id: str, backend: str) -> None:
    for seed in range(3):
        agent = agent_for(env_id, seed)
        evaluator = Evaluator(make_envs(env_id, 20, backend, training=False), seed=7)
        full = evaluator.run(agent)
        assert full.complete
        mean = float(full.returns.mean())
        for target in (mean - 1.0, mean):  # reachable: never cut short, the same 20 complete episodes
            same = evaluator.run(agent, target)
            assert same.complete and np.array_equal(same.returns, full.returns)
        cut = evaluator.run(agent, mean + 0.5)  # out of reach: stops once the bound says so
        if not cut.complete:
            assert (cut.returns >= full.returns).all() if env_id == "MountainCar-v0" else (cut.returns <= full.returns).all()
        unreachable_for_it = 480.0 if env_id == "CartPole-v1" else -100.0  # reachable by some policy, not by this one
        assert evaluator.run(agent, unreachable_for_it).complete is False


def test_an_untrained_cartpole_evaluation_is_cut_short_long_before_its_time_limit() -> None:
    agent = agent_for("CartPole-v1")
    evaluator = Evaluator(make_envs("CartPole-v1", 20, "torch", training=False), seed=1)
    steps = []
    original = evaluator.envs.step

    def counted(actions: torch.Tensor) -> fastdqn.envs.EnvStep:
        steps.append(1)
        return original(actions)

    evaluator.envs.step = counted  # type: ignore[method-assign]
    evaluation = evaluator.run(agent, 475.0)
    assert not evaluation.complete and len(steps) < 100  # random-looking play: two short episodes settle it


def test_metrics_say_which_evaluations_were_cut_short(tmp_path: Path) -> None:
    cfg = quiet_config(tmp_path, total_steps=2_000, learning_starts=500, eval_every_steps=500, eval_episodes=10, stop_at_return=475.0)
    run = fastdqn.train(cfg.replace(num_envs=8, log_every_steps=500))
    evals = [row for row in run.metrics if row["eval_return_mean"] != ""]
    assert len(evals) == 4 and all(row["eval_complete"] == 0 for row in evals)  # 2k steps of training cannot reach 475
    assert all(row["eval_complete"] == "" for row in run.metrics if row["eval_return_mean"] == "")
    assert run.best_eval_return is None and not (run.run_dir / "best.pt").exists()  # a partial mean measures no policy
    assert run.solved_at_step is None


def test_a_target_no_episode_can_reach_cuts_no_evaluation_short() -> None:
    """CartPole's 475 on Acrobot (whose returns are at most 0) must not cut every evaluation at its first step."""
    agent = agent_for("Acrobot-v1")
    evaluator = Evaluator(make_envs("Acrobot-v1", 4, "torch", training=False), seed=3)
    assert evaluator.run(agent, 475.0).complete


def test_negative_reward_envs_are_only_cut_short_when_they_cannot_pass() -> None:
    """MountainCar pays -1 a step: an unfinished episode's best case is to end at the next step, not to run on."""
    agent = agent_for("MountainCar-v0")
    evaluator = Evaluator(make_envs("MountainCar-v0", 4, "torch", training=False), seed=3)
    full = evaluator.run(agent)
    assert float(full.returns.mean()) == -200.0  # an untrained policy never reaches the flag
    assert evaluator.run(agent, -150.0).complete is False  # cut once the bound drops below -150, after ~150 steps
    assert evaluator.run(agent, -200.0).complete
