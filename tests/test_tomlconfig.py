"""TOML configs: `fastdqn config` prints one that reads back to the same Config; `train --config` reads it under the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fastdqn.cli import app
from fastdqn.cli_config import build_config
from fastdqn.config import PRESETS, Config, ConfigError, preset
from fastdqn.tomlconfig import read_toml, to_toml

runner = CliRunner()


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_config_command_prints_a_complete_toml_that_reads_back_to_the_preset(tmp_path: Path, name: str) -> None:
    result = runner.invoke(app, ["config", "--preset", name])
    assert result.exit_code == 0, result.output
    path = tmp_path / "run.toml"
    path.write_text(result.output)
    assert set(read_toml(path)) == {f for f in Config.__dataclass_fields__}  # complete: every field is written
    assert build_config(None, path, {}) == preset(name)
    assert "# Discount per env step." in result.output  # each key under its field's docstring


def test_toml_round_trips_none_lists_tables_and_awkward_strings(tmp_path: Path) -> None:
    cfg = preset("tutorial").replace(
        run_name=None,
        stop_at_return=None,
        log=("tensorboard", "wandb"),
        wandb_entity="team",
        learning_rate=1.5e-7,
        env_id='odd "name" \\ ünïcode\t',
        extra={"note": "a\nb", "seeds": [1, 2, 3], "nested": {"x": 0.5, "flag": True}, "odd key": "v"},
    )
    path = tmp_path / "run.toml"
    path.write_text(to_toml(cfg))
    assert build_config(None, path, {}) == cfg


def test_config_command_writes_options_and_a_saved_config_json_as_toml(tmp_path: Path) -> None:
    saved = tmp_path / "config.json"
    saved.write_text(preset("atari").replace(seed=7).to_json())
    result = runner.invoke(app, ["config", "--config", str(saved), "--env", "ALE/Breakout-v5", "--log", "tensorboard"])
    assert result.exit_code == 0, result.output
    path = tmp_path / "run.toml"
    path.write_text(result.output)
    assert build_config(None, path, {}) == preset("atari").replace(seed=7, env_id="ALE/Breakout-v5", log=("tensorboard",))


def test_train_config_toml_over_its_preset_with_cli_options_overriding_the_file(tmp_path: Path) -> None:
    path = tmp_path / "run.toml"
    path.write_text(
        "# a partial file: the rest comes from the tutorial preset\n"
        'preset = "tutorial"\n'
        "gamma = 0.9\n"
        "hidden_dim = 16\n"
        "total_steps = 300\n"
        "learning_starts = 100\n"
        'log = ["tensorboard"]\n'
        'stop_at_return = "none"\n'
        "eval_every_steps = 0\n"
        "save_plot = false\n"
    )
    args = ["train", "--config", str(path), "--out", str(tmp_path), "--run-name", "r", "--hidden-dim", "32", "--quiet"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "r" / "config.json").read_text())
    assert (saved["preset"], saved["gamma"], saved["hidden_dim"], saved["total_steps"]) == ("tutorial", 0.9, 32, 300)  # file, CLI wins
    assert (saved["loss"], saved["num_envs"], saved["stop_at_return"]) == ("mse", 1, None)  # from the tutorial preset
    assert saved["log"] == ["tensorboard"] and list((tmp_path / "r").glob("events.out.tfevents.*"))  # the file's --log, untouched


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('preset = "cartpole"\ngama = 0.9\n', "run.toml:2: unknown key 'gama' (did you mean 'gamma'?)"),
        ('gamma = 0.9\n\nnum_envs = "16"\n', 'run.toml:3: num_envs = "16" must be an integer'),
        ("double_dqn = 1\n", "run.toml:1: double_dqn = 1 must be true or false"),
        ('loss = "l1"\n', 'run.toml:1: loss = "l1" must be one of "huber", "mse"'),
        ('stop_at_return = "never"\n', 'run.toml:1: stop_at_return = "never" must be a number or "none"'),
        ("[env]\nid = 'x'\n", "run.toml: unknown key 'env'"),
        ("gamma = \n", "run.toml: not valid TOML: Invalid value (at line 1, column 9)"),
        ("gamma = 1.5\n", "gamma=1.5 must lie in [0, 1]"),
    ],
)
def test_train_config_toml_mistakes_are_one_line_naming_the_file_line_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "run.toml"
    path.write_text(text)
    result = runner.invoke(app, ["train", "--config", str(path), "--out", str(tmp_path / "runs"), "--quiet"])
    assert result.exit_code == 2
    output = result.output.strip()
    assert "Traceback" not in output and len(output.splitlines()) == 1, output
    assert message in output.replace(str(tmp_path) + "/", ""), output
    assert not (tmp_path / "runs").exists()


def test_to_toml_refuses_a_none_inside_extra() -> None:
    with pytest.raises(ConfigError, match=r"extra.note=None cannot be written as TOML"):
        to_toml(Config(extra={"note": None}))
