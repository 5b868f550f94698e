from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from fastdqn.cli import app

runner = CliRunner()
SMALL = [
    "--total-steps",
    "1500",
    "--learning-starts",
    "300",
    "--num-envs",
    "4",
    "--eval-every-steps",
    "500",
    "--eval-episodes",
    "3",
    "--quiet",
    "--no-save-plot",
]


def train_small(tmp_path: Path, *extra: str) -> Path:
    result = runner.invoke(app, ["train", "--out", str(tmp_path), "--run-name", "r", "--device", "cpu", *SMALL, *extra])
    assert result.exit_code == 0, result.output
    return tmp_path / "r"


def test_cli_train_writes_a_run_and_prints_a_summary(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["train", "--out", str(tmp_path), "--run-name", "r", "--seed", "5", "--gamma", "0.97", "--stop-at-return", "none", *SMALL]
    )
    assert result.exit_code == 0, result.output
    assert "env steps" in result.output and "1,500" in result.output
    saved = json.loads((tmp_path / "r" / "config.json").read_text())
    assert (saved["seed"], saved["gamma"], saved["stop_at_return"], saved["num_envs"]) == (5, 0.97, None, 4)


def test_cli_preset_values_are_overridden_by_options(tmp_path: Path) -> None:
    train_small(tmp_path, "--preset", "tutorial", "--hidden-dim", "32", "--no-double-dqn")
    saved = json.loads((tmp_path / "r" / "config.json").read_text())
    assert (saved["preset"], saved["hidden_dim"], saved["gamma"], saved["double_dqn"]) == ("tutorial", 32, 0.95, False)


def test_cli_eval_json_reports_mean_std_and_returns(tmp_path: Path) -> None:
    run = train_small(tmp_path)
    result = runner.invoke(app, ["eval", str(run), "--episodes", "5", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert len(report["returns"]) == 5
    assert report["mean"] == pytest.approx(sum(report["returns"]) / 5)
    text = runner.invoke(app, ["eval", str(run / "final.pt"), "-n", "3"])
    assert text.exit_code == 0 and "±" in text.output


def test_cli_plot_writes_a_png(tmp_path: Path) -> None:
    run = train_small(tmp_path)
    result = runner.invoke(app, ["plot", str(run), "--out", str(tmp_path / "curve.png")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_info_names_versions_and_threads() -> None:
    result = runner.invoke(app, ["info"])
    assert result.exit_code == 0
    assert torch.__version__ in result.output and "torch threads" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--env", "CartPol-v1"], "Did you mean CartPole-v1"),
        (["--env", "Pendulum-v1"], "DQN needs a Discrete action space"),
        (["--num-envs", "0"], "num_envs=0 must be a positive integer"),
        (["--batch-size", "512", "--buffer-capacity", "256"], "raise --buffer-capacity"),
        (["--total-steps", "100", "--learning-starts", "1000"], "raise --total-steps"),
        (["--preset", "fastest"], "unknown preset"),
    ],
)
def test_cli_bad_input_is_one_clear_line_and_a_nonzero_exit(tmp_path: Path, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["train", "--out", str(tmp_path), "--quiet", *args])
    assert result.exit_code == 2
    assert message in result.output.replace("\n", " ")
    assert "Traceback" not in result.output


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on machines without CUDA")
def test_cli_cuda_without_cuda_fails_at_once(tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", "--out", str(tmp_path), "--device", "cuda", "--quiet"])
    assert result.exit_code == 2
    assert "CUDA is not available" in result.output and "--device cpu" in result.output
    assert not any(tmp_path.iterdir())  # nothing written before failing


def test_cli_train_reports_the_run_before_it_writes_the_plot(tmp_path: Path) -> None:
    small = [arg for arg in SMALL if arg != "--no-save-plot"]
    result = runner.invoke(app, ["train", "--out", str(tmp_path), "--run-name", "r", "--device", "cpu", *small])
    assert result.exit_code == 0, result.output
    assert result.output.index("run folder") < result.output.index("returns.png written in")
    assert (tmp_path / "r" / "returns.png").stat().st_size > 0


@pytest.mark.parametrize("seeds", [None, "1-2"], ids=["single", "group"])
def test_build_configs_applies_an_explicit_none_to_every_run(seeds: str | None) -> None:
    from fastdqn.cli_config import build_configs

    cfgs = build_configs(None, None, {"stop_at_return": "none", "wandb_entity": "none", "gamma": "0.97"}, seeds)
    assert [(c.stop_at_return, c.wandb_entity, c.gamma) for c in cfgs] == [(None, None, 0.97)] * len(cfgs)
    assert len(cfgs) == (1 if seeds is None else 2)
