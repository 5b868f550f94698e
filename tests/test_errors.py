"""Every user mistake: one clear line, a non-zero exit, no traceback, nothing already written lost."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from fastdqn.cli import app

runner = CliRunner()
QUICK = ["--quiet", "--no-save-plot", "--device", "cpu", "--num-envs", "4", "--eval-every-steps", "0", "--stop-at-return", "none"]


def run_cli(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    output = " ".join(result.output.split())  # rich wraps long lines
    assert "Traceback" not in result.output
    return result.exit_code, output


def train_small(out: Path, *extra: str) -> Path:
    code, output = run_cli(
        "train",
        "--out",
        str(out),
        "--run-name",
        "r",
        *QUICK,
        "--total-steps",
        "800",
        "--learning-starts",
        "200",
        "--checkpoint-every-steps",
        "400",
        *extra,
    )
    assert code == 0, output
    return out / "r"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--env", "toyenv:DictCounter-v0"], "has a Dict observation space; fastdqn needs a Box"),
        (["--num-envs", "-3"], "num_envs=-3 must be a positive integer"),
        (["--buffer-capacity", "100000000000"], "GiB"),
        (["--device", "cuda:7"], "cuda"),
        (["--checkpoint-keep", "0"], "checkpoint_keep=0"),
        (["--stop-at-return", "lots"], "stop_at_return='lots' is not a number"),
    ],
)
def test_train_refuses_bad_settings(tmp_path: Path, args: list[str], message: str) -> None:
    code, output = run_cli("train", "--out", str(tmp_path), "--quiet", *args)
    assert code == 2
    assert message in output


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no checkpoint at"),
        (b"not a checkpoint at all", "is not a readable fastdqn checkpoint"),
        ("truncated", "is not a readable fastdqn checkpoint"),
        ("foreign", "not a fastdqn checkpoint"),
    ],
)
def test_eval_refuses_missing_truncated_and_foreign_checkpoints(tmp_path: Path, content: object, message: str) -> None:
    path = tmp_path / "model.pt"
    if content == "truncated":
        good = train_small(tmp_path) / "final.pt"
        data = good.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif content == "foreign":
        torch.save({"weights": torch.zeros(3)}, path)
    elif isinstance(content, bytes):
        path.write_bytes(content)
    code, output = run_cli("eval", str(path))
    assert code == 2
    assert message in output and str(path) in output


def test_eval_on_an_env_with_other_spaces_names_the_mismatch(tmp_path: Path) -> None:
    run = train_small(tmp_path)
    code, output = run_cli("eval", str(run), "--env", "Acrobot-v1", "-n", "2")
    assert code == 2
    assert "(4,)" in output and "(6,)" in output and "2 actions" in output


def test_existing_run_folder_is_refused_unless_resume_or_overwrite(tmp_path: Path) -> None:
    run = train_small(tmp_path)
    before = (run / "metrics.csv").read_text()
    code, output = run_cli("train", "--out", str(tmp_path), "--run-name", "r", *QUICK, "--total-steps", "800", "--learning-starts", "200")
    assert code == 2 and "already holds a run" in output and "--resume" in output and "--overwrite" in output
    assert (run / "metrics.csv").read_text() == before  # nothing written over
    code, output = run_cli(
        "train", "--out", str(tmp_path), "--run-name", "r", *QUICK, "--total-steps", "400", "--learning-starts", "200", "--overwrite"
    )
    assert code == 0, output


def test_resume_errors_name_the_fix(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "config.json").write_text("{}")
    code, output = run_cli("train", "--resume", str(tmp_path / "empty"), "--quiet")
    assert code == 2 and "holds no checkpoint" in output
    code, output = run_cli("train", "--resume", str(tmp_path / "nowhere"), "--quiet")
    assert code == 2 and "no config.json" in output
    run = train_small(tmp_path)
    code, output = run_cli("train", "--resume", str(run), "--quiet")
    assert code == 2 and "already finished at 800 env steps" in output
    code, output = run_cli("train", "--resume", str(run), "--quiet", "--gamma", "0.5")
    assert code == 2 and "only --total-steps may change" in output
    code, output = run_cli("train", "--resume", str(run), "--quiet", "--total-steps", "1200")
    assert code == 0, output


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path: Path) -> None:
    code, output = run_cli(
        "train", "--out", str(tmp_path), "--run-name", "r", *QUICK, "--total-steps", "40000", "--learning-starts", "600",
        "--learning-rate", "1e30", "--max-grad-norm", "0", "--checkpoint-every-steps", "200", "--log-every-steps", "200",
    )  # fmt: skip
    assert code == 1
    assert "NaN/inf between env step" in output and "lower --learning-rate" in output
    checkpoints = sorted((tmp_path / "r" / "checkpoints").glob("step-*.pt"))
    assert checkpoints
    from fastdqn.checkpoint import load_checkpoint

    newest = load_checkpoint(checkpoints[-1])
    assert torch.isfinite(newest["agent"]["q_network"]["hidden1.weight"]).all()


def test_env_that_raises_during_step_is_reported_with_the_step(tmp_path: Path) -> None:
    code, output = run_cli(
        "train",
        "--out",
        str(tmp_path),
        "--run-name",
        "r",
        *QUICK,
        "--env",
        "toyenv:ExplodingCounter-v0",
        "--total-steps",
        "800",
        "--learning-starts",
        "200",
    )
    assert code == 1
    assert "the env raised during step at env step" in output and "simulator diverged" in output
    assert (tmp_path / "r" / "metrics.csv").exists()
