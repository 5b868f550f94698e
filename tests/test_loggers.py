"""--log tensorboard / wandb: the trackers hold the same numbers as metrics.csv, read back from their own files."""

from __future__ import annotations

import csv
import json
import struct
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from configs import quiet_config
from typer.testing import CliRunner

from fastdqn.cli import app
from fastdqn.config import Config, ConfigError
from fastdqn.loggers import TAGS

runner = CliRunner()
SMALL = ["--device", "cpu", "--total-steps", "1500", "--learning-starts", "300", "--num-envs", "4", "--eval-every-steps", "500"]
SMALL += ["--eval-episodes", "3", "--log-every-steps", "500", "--quiet", "--no-save-plot", "--stop-at-return", "none"]


@pytest.fixture(scope="module")
def logged_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One short CartPole run logged to TensorBoard and to an offline W&B run (no network)."""
    out = tmp_path_factory.mktemp("runs")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("WANDB_MODE", "offline")
        env.setenv("WANDB_CONSOLE", "off")
        for name in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):
            env.setenv(name, str(out / "wandb-home"))
        result = runner.invoke(app, ["train", "--out", str(out), "--run-name", "r", *SMALL, "--log", "tensorboard", "--log", "wandb"])
    assert result.exit_code == 0, result.output
    yield out / "r"


def csv_series(run: Path, rows: int = 3) -> dict[str, list[tuple[int, float]]]:
    """metrics.csv as {tag: [(env_steps, value)]}, the filled cells only."""
    with (run / "metrics.csv").open(newline="") as f:
        written = list(csv.DictReader(f))
    assert len(written) == rows  # 500, 1000, 1500 in the CLI run
    return {tag: [(int(row["env_steps"]), float(row[column])) for row in written if row[column] != ""] for column, tag in TAGS.items()}


def test_tensorboard_events_hold_every_metrics_csv_value_at_its_env_step(logged_run: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(logged_run), size_guidance={"scalars": 0, "tensors": 0})
    events.Reload()
    expected = csv_series(logged_run)
    assert sorted(events.Tags()["scalars"]) == sorted(expected)
    for tag, series in expected.items():
        logged = [(event.step, event.value) for event in events.Scalars(tag)]
        assert [step for step, _ in logged] == [step for step, _ in series], tag
        assert [value for _, value in logged] == pytest.approx([value for _, value in series], rel=1e-6), tag
    assert [step for step, _ in expected["eval/return_mean"]] == [500, 1000, 1500]


def test_tensorboard_holds_the_config_as_hparams_and_text(logged_run: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    saved = json.loads((logged_run / "config.json").read_text())
    events = EventAccumulator(str(logged_run), size_guidance={"tensors": 0})
    events.Reload()
    content = events.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    hparams = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info.hparams
    assert hparams["gamma"].number_value == pytest.approx(saved["gamma"])
    assert hparams["env_id"].string_value == "CartPole-v1"
    assert hparams["stop_at_return"].string_value == "none"
    assert hparams["log"].string_value == '["tensorboard", "wandb"]'
    text = events.Tensors("hyperparameters/text_summary")[0].tensor_proto.string_val[0].decode()
    assert f"|learning_rate|{saved['learning_rate']}|" in text


def wandb_records(path: Path) -> Iterator[Any]:
    """The protobuf records of an offline run's .wandb file: a 7-byte W&B header, then LevelDB log blocks."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    block, pos, pending = 32768, 7, b""
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a header is padding
            pos += block - pos % block
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        pending += data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # FULL, or LAST of a record split over blocks
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            pending = b""
            yield record


def test_wandb_offline_run_holds_every_metrics_csv_value_and_the_config(logged_run: Path) -> None:
    (wandb_file,) = logged_run.glob("wandb/offline-run-*/run-*.wandb")
    history: list[dict[str, Any]] = []
    run_info = None
    for record in wandb_records(wandb_file):
        kind = record.WhichOneof("record_type")
        if kind == "history":
            history.append({"/".join(item.nested_key) or item.key: json.loads(item.value_json) for item in record.history.item})
        elif kind == "run":
            run_info = record.run
    expected = csv_series(logged_run)
    assert [row["env_steps"] for row in history] == [500, 1000, 1500]
    assert [row["_step"] for row in history] == [500, 1000, 1500]  # W&B's own x axis is env steps
    for tag, series in expected.items():
        logged = [(row["env_steps"], row[tag]) for row in history if tag in row]
        assert [step for step, _ in logged] == [step for step, _ in series], tag
        assert [value for _, value in logged] == pytest.approx([value for _, value in series]), tag
    assert run_info is not None and run_info.display_name == "r" and run_info.project == "fastdqn"
    config = {item.key: json.loads(item.value_json) for item in run_info.config.update}
    saved = json.loads((logged_run / "config.json").read_text())
    assert {name: config[name] for name in saved} == saved
    assert run_info.run_id == (logged_run / "wandb" / "fastdqn-run-id").read_text().strip()


@pytest.mark.parametrize(("name", "module"), [("wandb", "wandb"), ("tensorboard", "tensorboard")])
def test_log_without_its_extra_is_one_line_naming_the_install_and_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, module: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # `import module` now raises ImportError, as when it is not installed
    result = runner.invoke(app, ["train", "--out", str(tmp_path), "--run-name", "r", *SMALL, "--log", name])
    assert result.exit_code == 2
    assert f'pip install -e ".[{name}]"' in " ".join(result.output.split())
    assert "Traceback" not in result.output
    assert not (tmp_path / "r").exists()  # refused before a run folder is made


def test_config_log_names_the_trackers_it_knows() -> None:
    assert Config.from_dict({"log": ["wandb", "tensorboard", "wandb"]}).log == ("wandb", "tensorboard")  # as config.json hands it over
    with pytest.raises(ConfigError, match="log='mlflow' is not one of tensorboard, wandb"):
        Config(log=("mlflow",))


def test_tensorboard_after_a_resume_holds_each_metrics_csv_row_once(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from fastdqn.train import train

    cfg = quiet_config(tmp_path, run_name="r", log=("tensorboard",), total_steps=1500, log_every_steps=250, num_envs=4)
    cfg = cfg.replace(learning_starts=300, checkpoint_every_steps=500, checkpoint_keep=5)
    run = train(cfg).run_dir
    for late in sorted((run / "checkpoints").glob("step-*.pt"))[1:]:
        late.unlink()  # as if the run crashed after its 500-step checkpoint, with rows and events up to 1500 written
    train(cfg, resume=run)
    events = EventAccumulator(str(run), size_guidance={"scalars": 0})
    events.Reload()
    expected = csv_series(run, rows=6)  # 252, 500, 752, 1000, 1252, 1500 (4 envs)
    assert [step for step, _ in expected["rollout/epsilon"]] == [252, 500, 752, 1000, 1252, 1500]
    for tag in ("train/loss", "rollout/epsilon", "time/sps"):
        logged = [(event.step, event.value) for event in events.Scalars(tag)]
        assert [step for step, _ in logged] == [step for step, _ in expected[tag]], tag  # once each: the crashed run's are purged
        assert [value for _, value in logged] == pytest.approx([value for _, value in expected[tag]], rel=1e-6), tag


def test_wandb_that_cannot_start_a_run_is_one_line_naming_login_and_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import wandb

    def refuse(**_: object) -> None:
        raise wandb.errors.UsageError("api_key not configured (no-tty). call wandb.login(key=[your_api_key])")

    monkeypatch.setattr(wandb, "init", refuse)
    result = runner.invoke(app, ["train", "--out", str(tmp_path), "--run-name", "r", *SMALL, "--log", "wandb"])
    assert result.exit_code == 2
    output = " ".join(result.output.split())
    assert "W&B could not start a run (api_key not configured (no-tty)" in output and "WANDB_MODE=offline" in output
    assert "Traceback" not in result.output
