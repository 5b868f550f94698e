"""Presets are TOML data files picked by env id; `fastdqn presets` lists them; `eval` says which policy it evaluated."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fastdqn.cli import app
from fastdqn.cli_config import build_config
from fastdqn.cli_config import train_options as _train_options
from fastdqn.config import Config, ConfigError, preset
from fastdqn.presets import GENERAL, info, names, preset_for_env
from fastdqn.tomlconfig import to_toml

runner = CliRunner()
CLASSIC = {"CartPole-v1": "cartpole", "Acrobot-v1": "acrobot", "MountainCar-v0": "mountaincar", "LunarLander-v3": "lunarlander"}


@pytest.mark.parametrize(("env_id", "name"), [*CLASSIC.items(), ("ALE/Breakout-v5", "atari"), ("ALE/Pong-v5", "atari")])
def test_env_id_picks_its_own_preset_without_being_told(env_id: str, name: str) -> None:
    cfg = build_config(None, None, {"env_id": env_id})
    assert cfg == preset(name).replace(env_id=env_id)
    assert cfg.preset == name


def test_an_unknown_env_id_is_refused_before_any_note_about_presets(tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", "--env", "CartPol-v1", "--out", str(tmp_path), "--quiet"])
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code != 0 and not any(line.startswith("note:") for line in lines), result.output
    assert lines[0].startswith("error: unknown env id 'CartPol-v1'") and "CartPole-v1" in result.output
    assert not any(tmp_path.iterdir())


def test_preset_option_overrides_the_env_ids_preset() -> None:
    cfg = build_config("cartpole-fast", None, {"env_id": "Acrobot-v1", "seed": "4"})
    assert cfg == preset("cartpole-fast").replace(env_id="Acrobot-v1", seed=4)


def test_env_with_no_preset_gets_the_general_default_and_a_one_line_note() -> None:
    result = runner.invoke(app, ["config", "--env", "Pendulum-v1"])
    assert result.exit_code == 0, result.output
    notes = [line for line in result.output.splitlines() if line.startswith("note:")]
    assert notes == [
        "note: no preset for Pendulum-v1; using the general `default` preset (`fastdqn presets` lists them; --preset NAME picks one)"
    ]
    assert 'preset = "default"' in result.output and 'env_id = "Pendulum-v1"' in result.output
    quiet = runner.invoke(app, ["config", "--env", "Acrobot-v1"])
    assert quiet.exit_code == 0 and "note:" not in quiet.output and 'preset = "acrobot"' in quiet.output


def test_general_default_is_not_cartpoles_speed_tune() -> None:
    general, fast = preset(GENERAL), preset("cartpole-fast")
    assert (general.hidden_dim, general.learning_rate, general.buffer_capacity) != (
        fast.hidden_dim,
        fast.learning_rate,
        fast.buffer_capacity,
    )
    assert general.stop_at_return is None  # an unknown env has no known solve line


def test_toml_file_without_a_preset_key_starts_from_its_env_ids_preset(tmp_path: Path) -> None:
    path = tmp_path / "run.toml"
    path.write_text('env_id = "MountainCar-v0"\nseed = 3\n')
    assert build_config(None, path, {}) == preset("mountaincar").replace(seed=3)
    assert build_config(None, path, {"env_id": "Acrobot-v1"}) == preset("acrobot").replace(seed=3)  # --env picks before the file
    assert build_config("tutorial", path, {}) == preset("tutorial").replace(env_id="MountainCar-v0", seed=3)


@pytest.mark.parametrize("name", names())
def test_every_shipped_preset_loads_into_a_valid_config_that_round_trips(tmp_path: Path, name: str) -> None:
    cfg = preset(name)
    assert isinstance(cfg, Config) and cfg.preset == name
    path = tmp_path / "preset.toml"
    path.write_text(to_toml(cfg))
    assert build_config(None, path, {}) == cfg
    assert Config.from_dict(json.loads(cfg.to_json())) == cfg
    meta = info(name)
    assert meta.budget == cfg.total_steps and meta.validated and meta.description
    for env_id in meta.env_ids:
        if "*" not in env_id:
            assert preset_for_env(env_id) == name


def test_no_two_presets_claim_one_env_id() -> None:
    claims = [env_id for name in names() for env_id in info(name).env_ids]
    assert len(claims) == len(set(claims))
    assert preset_for_env("ale_py:ALE/Breakout-v5") == "atari"  # `module:` prefixes are matched on the id
    assert preset_for_env("Pendulum-v1") is None


def test_unknown_preset_names_the_shipped_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown preset 'acrobat'; choose one of default, acrobot"):
        preset("acrobat")


def test_presets_command_lists_name_env_ids_budget_and_validated_result() -> None:
    result = runner.invoke(app, ["presets", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in map(json.loads, result.output.splitlines())}
    assert list(rows) == names() and next(iter(rows)) == GENERAL
    assert rows["acrobot"]["env_ids"] == ["Acrobot-v1"] and rows["acrobot"]["budget"] == 100_000
    assert rows["mountaincar"]["budget"] == 120_000 and rows["atari"]["env_ids"] == ["ALE/*"]
    assert all(row["validated"] for row in rows.values())
    table = runner.invoke(app, ["presets"])
    assert table.exit_code == 0
    line = next(line for line in table.output.splitlines() if line.startswith("│ acrobot "))  # the first line of its row
    assert "Acrobot-v1" in line and "100,000" in line and rows["acrobot"]["validated"].split()[0] in line


def test_train_help_explains_where_the_defaults_come_from() -> None:
    result = runner.invoke(app, ["train", "--help"])
    assert result.exit_code == 0
    assert "preset of --env" in " ".join(result.output.split()) and "fastdqn presets" in result.output
    hidden = next(p for p in _train_options() if p.name == "hidden_dim")
    assert hidden.annotation.__metadata__[0].help.endswith(f"[cartpole preset: {preset('cartpole').hidden_dim}]")


SMALL = ["--total-steps", "1200", "--learning-starts", "300", "--num-envs", "4", "--eval-episodes", "3", "--quiet", "--no-save-plot"]


def test_eval_says_whether_it_evaluated_the_best_or_the_final_policy(tmp_path: Path) -> None:
    args = ["train", "--preset", "cartpole-fast", "--out", str(tmp_path), "--run-name", "r", "--device", "cpu"]
    assert runner.invoke(app, [*args, *SMALL, "--eval-every-steps", "400", "--stop-at-return", "none"]).exit_code == 0
    run = tmp_path / "r"
    best = json.loads(runner.invoke(app, ["eval", str(run), "-n", "3", "--json"]).output)
    final = json.loads(runner.invoke(app, ["eval", str(run), "-n", "3", "--json", "--policy", "final"]).output)
    assert (best["policy"], Path(best["checkpoint"]).name) == ("best", "best.pt")
    assert (final["policy"], Path(final["checkpoint"]).name) == ("final", "final.pt")
    text = runner.invoke(app, ["eval", str(run), "-n", "2", "--policy", "final"], terminal_width=200)
    assert text.exit_code == 0 and text.output.startswith("final policy, ") and "2 greedy episodes" in text.output
    wrong = runner.invoke(app, ["eval", str(run), "--policy", "last"])
    assert wrong.exit_code == 2 and "--policy 'last' is not one of best, final" in wrong.output


def test_eval_of_a_run_without_evaluations_says_it_fell_back_to_the_final_policy(tmp_path: Path) -> None:
    args = ["train", "--preset", "cartpole-fast", "--out", str(tmp_path), "--run-name", "r", "--device", "cpu", *SMALL]
    assert runner.invoke(app, [*args, "--eval-every-steps", "0"]).exit_code == 0
    text = runner.invoke(app, ["eval", str(tmp_path / "r"), "-n", "2"], terminal_width=200)
    assert text.exit_code == 0 and text.output.startswith("final policy (no best.pt: no evaluation ran), ")


def test_lunarlander_trains_with_its_preset_when_box2d_is_installed(tmp_path: Path) -> None:
    pytest.importorskip("Box2D", reason="the box2d extra: pip install -e '.[box2d]'")
    args = ["train", "--env", "LunarLander-v3", "--out", str(tmp_path), "--run-name", "r", "--device", "cpu", "--eval-every-steps", "0"]
    result = runner.invoke(app, [*args, "--total-steps", "600", "--learning-starts", "200", "--quiet", "--no-save-plot"])
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "r" / "config.json").read_text())
    assert (saved["preset"], saved["env_id"], saved["hidden_dim"]) == ("lunarlander", "LunarLander-v3", preset("lunarlander").hidden_dim)
    with (tmp_path / "r" / "metrics.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert int(rows[-1]["env_steps"]) == 600 and int(rows[-1]["updates"]) > 0
    assert (tmp_path / "r" / "final.pt").exists()
