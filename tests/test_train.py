from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
from configs import quiet_config

import fastdqn
from fastdqn.agent import DQNAgent
from fastdqn.metrics import COLUMNS


def small_config(tmp_path: Path, **overrides: object) -> fastdqn.Config:
    values: dict[str, object] = {
        "total_steps": 3_000,
        "learning_starts": 500,
        "num_envs": 8,
        "eval_every_steps": 1_000,
        "eval_episodes": 4,
        "log_every_steps": 500,
    }
    return quiet_config(tmp_path, **{**values, **overrides})


def test_same_seed_gives_the_same_curve_and_weights_on_cpu(tmp_path: Path) -> None:
    runs = [fastdqn.train(small_config(tmp_path / str(i), seed=3)) for i in range(2)]
    drop_time = [{k: v for k, v in row.items() if k not in ("wall_s", "sps")} for run in runs for row in run.metrics]
    half = len(drop_time) // 2
    assert drop_time[:half] == drop_time[half:]
    assert torch.equal(runs[0].agent.online.data, runs[1].agent.online.data)
    other = fastdqn.train(small_config(tmp_path / "other", seed=4))
    assert not torch.equal(other.agent.online.data, runs[0].agent.online.data)


def test_run_folder_holds_config_metrics_episodes_and_checkpoints(tmp_path: Path) -> None:
    cfg = small_config(tmp_path, run_name="r1", save_plot=True)
    run = fastdqn.train(cfg)
    assert run.run_dir == tmp_path / "r1"
    assert fastdqn.Config.load(run.run_dir / "config.json") == cfg
    with (run.run_dir / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0].keys()) == COLUMNS
    assert [int(r["env_steps"]) for r in rows] == sorted(int(r["env_steps"]) for r in rows)
    assert int(rows[-1]["env_steps"]) == run.env_steps == 3_000
    assert sum(1 for r in rows if r["eval_return_mean"]) == 3
    assert rows[-1]["loss"] != "" and float(rows[-1]["epsilon"]) < 1.0
    for name in ("best.pt", "final.pt", "returns.png", "episodes.csv"):
        assert (run.run_dir / name).exists(), name
    best = DQNAgent.load(run.run_dir / "best.pt")
    assert max(mean for _, mean in run.eval_history) == run.best_eval_return
    returns = fastdqn.evaluate(best, "CartPole-v1", episodes=4, seed=cfg.seed + 100_000)
    assert sum(returns) / 4 == pytest.approx(run.best_eval_return)  # best.pt is the best evaluated policy


def test_replay_ratio_sets_the_number_of_gradient_steps(tmp_path: Path) -> None:
    cfg = small_config(tmp_path, eval_every_steps=0, num_envs=4, train_every=2, gradient_steps=3, learning_starts=400, total_steps=2_000)
    run = fastdqn.train(cfg)
    vector_steps_with_updates = len([s for s in range(1, 2_000 // 4 + 1) if s * 4 >= 400 and s % 2 == 0])
    assert run.agent.updates == 3 * vector_steps_with_updates


def test_existing_run_folder_is_refused(tmp_path: Path) -> None:
    fastdqn.train(small_config(tmp_path, run_name="same", total_steps=600, eval_every_steps=0))
    with pytest.raises(fastdqn.ConfigError, match="already holds a run"):
        fastdqn.train(small_config(tmp_path, run_name="same", total_steps=600, eval_every_steps=0))


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
def test_default_preset_solves_cartpole(tmp_path: Path, seed: int) -> None:
    cfg = fastdqn.preset("cartpole-fast").replace(seed=seed, out_dir=str(tmp_path), save_plot=False, total_steps=60_000)
    run = fastdqn.train(cfg)
    assert run.solved_at_step is not None, f"best greedy eval {run.best_eval_return}"
    returns = fastdqn.evaluate(DQNAgent.load(run.run_dir / "best.pt"), "CartPole-v1", episodes=20, seed=cfg.seed + 100_000)
    assert sum(returns) / len(returns) >= 475


@pytest.mark.slow
def test_tutorial_preset_reproduces_the_tutorials_learning(tmp_path: Path) -> None:
    """The tutorial's curve climbs from ~10-20 to the 200+ range; its preset, defects fixed, does too."""
    cfg = fastdqn.preset("tutorial").replace(out_dir=str(tmp_path), save_plot=False, total_steps=9_000, eval_every_steps=0)
    run = fastdqn.train(cfg)
    returns = [row["return_mean"] for row in run.metrics if row["return_mean"] != ""]
    assert returns[0] < 40
    assert max(returns) >= 200
    assert run.agent.target_network is not run.agent.q_network
