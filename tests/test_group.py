"""Many runs in one process: members follow their single runs, stay independent, stop on their own."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from configs import quiet_config
from typer.testing import CliRunner

from fastdqn.agent import DQNAgent
from fastdqn.cli import app
from fastdqn.cli_config import parse_seeds
from fastdqn.config import Config, ConfigError
from fastdqn.config import preset as fastdqn_preset
from fastdqn.group import check_group, train_many
from fastdqn.group_report import bootstrap_iqm_band, iqm
from fastdqn.train import train

runner = CliRunner()


def small(tmp_path: Path, **values: Any) -> Config:
    settings: dict[str, Any] = {
        "num_envs": 4,
        "total_steps": 1200,
        "learning_starts": 200,
        "buffer_capacity": 2000,
        "batch_size": 32,
        "gradient_steps": 2,
        "target_update_every": 16,
        "epsilon_decay_steps": 800,
        "log_every_steps": 200,
        "eval_every_steps": 400,
        "eval_episodes": 3,
    }
    return quiet_config(tmp_path, **{**settings, **values})


def curve(rows: list[dict[str, Any]], up_to: int = 10**9) -> list[tuple[Any, ...]]:
    """What a run did, row by row: its updates, episodes, their returns and its evaluations."""
    return [(r["env_steps"], r["updates"], r["episodes"], r["return_mean"], r["eval_return_mean"]) for r in rows if r["env_steps"] <= up_to]


EARLY = 600
"""Env steps (about 100 updates here) over which a member and its single run must agree row for row.

Stacked matmuls sum in another order than a single run's, so weights agree to float tolerance,
not bit for bit; after some hundreds of updates at a high learning rate a greedy action can flip on
a near tie, and from there the two trajectories part, as two BLAS libraries' runs would. Prioritized
replay parts sooner: a priority a rounding apart moves a stratum's boundary, so they agree to 400."""


@pytest.mark.parametrize(
    ("backend", "n_step", "option"),
    [("gymnasium", 1, {}), ("gymnasium", 3, {}), ("torch", 1, {}), ("gymnasium", 3, {"per": True}), ("torch", 1, {"network": "dueling"})],
)
def test_each_member_follows_the_single_run_with_its_seed(tmp_path: Path, backend: str, n_step: int, option: dict[str, Any]) -> None:
    base = small(tmp_path, env_backend=backend, n_step=n_step, total_steps=800, **option)
    cfgs = [base.replace(seed=3), base.replace(seed=8, learning_rate=1e-3)]
    members = train_many(cfgs)
    for result, cfg in zip(members, cfgs, strict=True):
        single = train(cfg.replace(run_name=f"single-{cfg.seed}"))
        early = 400 if cfg.per else EARLY
        assert curve(result.metrics, early) == curve(single.metrics, early)  # same episodes, returns and evaluations
        losses = [r["loss"] for r in result.metrics if r["loss"] != ""]
        single_losses = [r["loss"] for r in single.metrics if r["loss"] != ""]
        assert losses[0] == pytest.approx(single_losses[0], rel=1e-5, abs=1e-6)  # the first updates: float tolerance
        rows = 400  # the same env starts, exploration coins and actions: the same rows, in the same places
        for name in ("obs", "action", "reward", "terminated"):
            assert torch.equal(result.buffer.storage.fields[name][:rows], single.buffer.storage.fields[name][:rows]), name
        assert result.buffer.writer.size >= rows


@pytest.mark.parametrize("option", [{}, {"per": True}, {"network": "dueling"}])
def test_changing_one_members_seed_never_changes_another(tmp_path: Path, option: dict[str, Any]) -> None:
    base = small(tmp_path, stop_at_return=30.0, **option)
    first = train_many([base.replace(seed=1), base.replace(seed=2, learning_rate=1e-3)])
    second = train_many([base.replace(seed=1), base.replace(seed=9, learning_rate=1e-3)])
    assert first[0].metrics == [
        dict(r, wall_s=first[0].metrics[i]["wall_s"], sps=first[0].metrics[i]["sps"]) for i, r in enumerate(second[0].metrics)
    ]
    assert torch.equal(first[0].agent.online.data, second[0].agent.online.data)
    assert curve(first[1].metrics) != curve(second[1].metrics)


def test_a_member_that_solves_is_frozen_while_the_others_go_on(tmp_path: Path) -> None:
    base = small(tmp_path, total_steps=1600)
    results = train_many([base.replace(seed=1, stop_at_return=5.0), base.replace(seed=2, stop_at_return=None)])
    solved, other = results
    assert solved.solved_at_step == 400 and solved.env_steps == 400  # the first evaluation passes 5.0
    assert solved.metrics[-1]["env_steps"] == 400 and other.metrics[-1]["env_steps"] == 1600
    frozen = DQNAgent.load(solved.run_dir / "final.pt")
    assert frozen.updates == solved.agent.updates
    torch.testing.assert_close(frozen.online.data, solved.agent.online.data)
    with (solved.run_dir.parent / "summary.csv").open() as f:
        summary = list(csv.DictReader(f))
    assert [row["status"] for row in summary] == ["solved", "total_steps"]
    assert summary[0]["solved_at_step"] == "400" and summary[1]["solved_at_step"] == ""


def test_group_folder_holds_a_run_folder_per_member_a_summary_and_a_plot(tmp_path: Path) -> None:
    cfgs = [small(tmp_path, run_name="g", save_plot=True, learning_rate=lr, seed=s) for lr in (1e-3, 5e-3) for s in (1, 2)]
    results = train_many(cfgs)
    group = tmp_path / "g"
    names = sorted(p.name for p in group.iterdir() if p.is_dir())
    assert names == ["learning_rate_0.001-s1", "learning_rate_0.001-s2", "learning_rate_0.005-s1", "learning_rate_0.005-s2"]
    for result in results:
        for name in ("config.json", "metrics.csv", "episodes.csv", "best.pt", "final.pt", "returns.png"):
            assert (result.run_dir / name).is_file(), name
        assert Config.load(result.run_dir / "config.json").learning_rate == result.agent.cfg.learning_rate
    assert (group / "summary.csv").is_file() and (group / "returns.png").stat().st_size > 10_000


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"hidden_dim": 32}, "hidden_dim change tensor shapes"),
        ({"batch_size": 16}, "batch_size change tensor shapes"),
        ({"loss": "mse"}, "loss must be the same for every member"),
        ({"seed": 1}, "same settings"),
    ],
)
def test_a_group_that_cannot_train_as_one_is_refused_in_one_line(tmp_path: Path, changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        check_group([small(tmp_path, seed=1), small(tmp_path, seed=2).replace(**changes)])


def test_seed_lists_parse_ranges_and_lists() -> None:
    assert parse_seeds("1-4") == [1, 2, 3, 4]
    assert parse_seeds("1,4,9") == [1, 4, 9]
    assert parse_seeds("1-3,7") == [1, 2, 3, 7]
    for bad in ("3-1", "a", "1,1", ""):
        with pytest.raises(ConfigError, match="--seeds"):
            parse_seeds(bad)


def test_cli_trains_the_grid_of_listed_values_times_the_seeds(tmp_path: Path) -> None:
    args = ["train", "--out", str(tmp_path), "--run-name", "g", "--device", "cpu", "--quiet", "--no-save-plot"]
    args += ["--total-steps", "600", "--learning-starts", "200", "--num-envs", "4", "--eval-every-steps", "0"]
    result = runner.invoke(app, [*args, "--learning-rate", "1e-3,5e-3", "--seeds", "1-2"])
    assert result.exit_code == 0, result.output
    assert "4 runs in one process" in result.output
    folders = sorted(p.name for p in (tmp_path / "g").iterdir() if p.is_dir())
    assert folders == ["learning_rate_0.001-s1", "learning_rate_0.001-s2", "learning_rate_0.005-s1", "learning_rate_0.005-s2"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--hidden-dim", "32,64", "--seeds", "1-2"], "--hidden-dim change tensor shapes"),
        (["--seeds", "1-2", "--seed", "3"], "not both"),
        (["--learning-rate", "1e-3,x"], "'x' is not a number"),
        (["--seeds", "1-2", "--env-backend", "torch", "--fuse-step", "on"], "--fuse-step on is a single-run mode"),
        (["--seeds", "1-2", "--actors", "1"], "--actors 1 trains one run with Ray actors"),
    ],
)
def test_cli_refuses_a_bad_group_in_one_line(tmp_path: Path, extra: list[str], message: str) -> None:
    result = runner.invoke(app, ["train", "--out", str(tmp_path), "--quiet", *extra])
    assert result.exit_code == 2
    assert message in result.output.replace("\n", " ")
    assert "Traceback" not in result.output and not any(tmp_path.iterdir())


def test_iqm_drops_the_lowest_and_highest_quarter() -> None:
    assert float(iqm(np.arange(1.0, 9.0))) == pytest.approx(4.5)  # mean of 3, 4, 5, 6
    assert float(iqm(np.array([0.0, 1.0, 2.0, 1000.0]))) == pytest.approx(1.5)


def test_bootstrap_band_holds_the_iqm_and_is_flat_for_equal_runs() -> None:
    runs = np.random.default_rng(0).normal(100.0, 10.0, size=(10, 5))
    low, high = bootstrap_iqm_band(runs)
    centre = iqm(runs)
    assert (low <= centre).all() and (centre <= high).all() and (high - low > 0).all()
    low, high = bootstrap_iqm_band(np.full((6, 3), 7.0))
    assert np.allclose(low, 7.0) and np.allclose(high, 7.0)


@pytest.mark.parametrize(("backend", "n_step", "per"), [("gymnasium", 1, False), ("torch", 3, False), ("gymnasium", 3, True)])
def test_an_interrupted_group_resumes_to_the_uninterrupted_result(tmp_path: Path, backend: str, n_step: int, per: bool) -> None:
    from fastdqn.group import read_group_configs
    from fastdqn.train import TrainingInterrupted

    def members(name: str) -> list[Config]:
        base = small(tmp_path, run_name=name, total_steps=1200, checkpoint_every_steps=400, env_backend=backend, n_step=n_step, per=per)
        return [base.replace(seed=1, stop_at_return=5.0), base.replace(seed=2)]

    whole = train_many(members("whole"))
    with pytest.raises(TrainingInterrupted) as stopped:
        train_many(members("cut"), interrupt_at_step=600)
    assert stopped.value.exit_code == 130 and "--resume" in str(stopped.value)
    group = tmp_path / "cut"
    resumed = train_many(read_group_configs(group), resume=group)
    for mine, theirs in zip(resumed, whole, strict=True):
        drop = ("wall_s", "sps")
        assert [{k: v for k, v in r.items() if k not in drop} for r in mine.metrics] == [
            {k: v for k, v in r.items() if k not in drop} for r in theirs.metrics
        ]
        assert torch.equal(mine.agent.online.data, theirs.agent.online.data)
        assert mine.solved_at_step == theirs.solved_at_step and mine.env_steps == theirs.env_steps
    assert resumed[0].solved_at_step == 400 and resumed[1].env_steps == 1200
    with (group / "summary.csv").open() as f:
        assert [row["status"] for row in csv.DictReader(f)] == ["solved", "total_steps"]


@pytest.mark.slow
def test_a_group_of_cartpole_seeds_learns_to_solve(tmp_path: Path) -> None:
    """Three seeds of the cartpole preset on the native env, stacked: at least two solve (greedy 475).

    Seeds 2, 6 and 7 solve in 2-4k env steps as single Gymnasium runs (7-14k before cartpole-fast's retune), which keeps
    the test short."""
    base = fastdqn_preset("cartpole-fast").replace(
        env_backend="torch", device="cpu", out_dir=str(tmp_path), save_plot=False, total_steps=30_000
    )
    results = train_many([base.replace(seed=s) for s in (2, 6, 7)])
    solved = [r.solved_at_step for r in results if r.solved_at_step is not None]
    assert len(solved) >= 2, [r.best_eval_return for r in results]
    assert all(r.env_steps == r.solved_at_step for r in results if r.solved_at_step is not None)  # frozen where it solved


def test_sigterm_checkpoints_a_group_and_the_cli_resumes_it(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    root = Path(__file__).resolve().parents[1]
    command = [sys.executable, str(root / "cli.py"), "train", "--out", str(tmp_path), "--run-name", "g", "--device", "cpu", "--quiet"]
    command += ["--no-save-plot", "--seeds", "1-2", "--num-envs", "4", "--eval-every-steps", "0", "--stop-at-return", "none"]
    env = {**os.environ, "PYTHONPATH": str(root)}
    process = subprocess.Popen(
        [*command, "--total-steps", "10000000", "--checkpoint-every-steps", "800"], cwd=root, env=env, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 120
    while not list((tmp_path / "g" / "checkpoints").glob("step-*.pt")):
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143, stderr
    assert "SIGTERM at env step" in stderr and f"--resume {tmp_path / 'g'}" in stderr.replace("\n", "")
    step = int(sorted((tmp_path / "g" / "checkpoints").glob("step-*.pt"))[-1].stem.removeprefix("step-"))
    resumed = runner.invoke(app, ["train", "--resume", str(tmp_path / "g"), "--total-steps", str(step + 400), "--quiet"])
    assert resumed.exit_code == 0, resumed.output
    for member in ("s1", "s2"):
        with (tmp_path / "g" / member / "metrics.csv").open() as f:
            steps = [int(row["env_steps"]) for row in csv.DictReader(f)]
        assert steps == sorted(set(steps)) and steps[-1] == step + 400  # no duplicated or missing rows


@pytest.mark.slow
def test_nature_cnn_members_follow_their_single_runs(tmp_path: Path) -> None:
    import framestack_env  # noqa: F401  (registers the pixel envs)

    base = small(
        tmp_path, env_id="framestack_env:Frames84-v0", network="nature_cnn", num_envs=2, total_steps=120, learning_starts=80,
        batch_size=8, buffer_capacity=256, gradient_steps=1, target_update_every=8, log_every_steps=40, eval_every_steps=0,
    )  # fmt: skip
    cfgs = [base.replace(seed=1), base.replace(seed=2, learning_rate=1e-3)]
    for member, cfg in zip(train_many(cfgs), cfgs, strict=True):  # functorch's grads sum in another order: float tolerance
        single = train(cfg.replace(run_name=f"single-{cfg.seed}"))
        assert member.agent.updates == single.agent.updates > 0
        for mine, theirs in ((member.agent.online.data, single.agent.online.data), (member.agent.target.data, single.agent.target.data)):
            apart = (mine - theirs).abs()  # Adam may move a weight whose gradient is ~0 by its lr on a float-order difference
            assert float(apart.max()) < 10 * cfg.learning_rate and float((apart > 1e-5).float().mean()) < 1e-2
        assert (member.run_dir / "episodes.csv").read_text() == (single.run_dir / "episodes.csv").read_text()


def test_a_group_checkpoint_holds_and_restores_every_process_generator(tmp_path: Path) -> None:
    import random

    from fastdqn.group import read_group_configs
    from fastdqn.resume import load_group_checkpoint
    from fastdqn.train import TrainingInterrupted

    cfgs = [small(tmp_path, run_name="g", total_steps=800, seed=s) for s in (1, 2)]
    with pytest.raises(TrainingInterrupted):
        train_many(cfgs, interrupt_at_step=400)
    saved = load_group_checkpoint(tmp_path / "g", 800)
    assert set(saved["rng"]) >= {"python", "numpy", "torch"}
    random.seed(99)  # a resume must not go on from whatever the process drew before it
    np.random.seed(99)
    train_many(read_group_configs(tmp_path / "g"), resume=tmp_path / "g")
    assert random.getstate() == tuple(saved["rng"]["python"])  # restored, and the loop draws nothing from it


def test_a_learning_rate_grid_trains_each_member_as_its_single_run(tmp_path: Path) -> None:
    """Members with rates of their own step with one fused Adam kernel each on a CPU: the single
    run's arithmetic, so a grid's members do not part from their runs (a masked step over (K, P) had
    them 1e-3 to 1 apart within 1,500 updates, Adam magnifying rounding on ~0 gradients)."""
    base = {"num_envs": 4, "total_steps": 2_000, "learning_starts": 500, "batch_size": 32}
    cfgs = [quiet_config(tmp_path / "grid", seed=s, learning_rate=lr, **base) for s, lr in ((1, 5e-3), (2, 1e-3), (3, 2e-3))]
    for member, cfg in zip(train_many(cfgs), cfgs, strict=True):
        single = train(cfg.replace(out_dir=str(tmp_path / f"single{cfg.seed}")))
        assert member.agent.updates == single.agent.updates == 1_504
        assert torch.equal(member.agent.online.data, single.agent.online.data), cfg.learning_rate
        assert torch.equal(member.agent.optimizer.exp_avg_sq, single.agent.optimizer.exp_avg_sq)
