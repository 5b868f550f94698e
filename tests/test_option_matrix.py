"""Every option in every mode either trains or is refused in one line naming it: nothing is silently ignored.

Modes are rows of issue 17's table (a single run, native envs, the fused step, many runs in one
process, Ray actors); options are its columns. `REFUSED` lists the cells a mode cannot do yet, with
the words its one-line refusal must carry; every other cell must train a tiny run through the CLI
and show the option in what it leaves behind. When a mode learns an option, delete its cell here.
"""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fastdqn.cli import app

runner = CliRunner()

TINY = [
    "--total-steps", "256", "--num-envs", "4", "--n-step", "1", "--learning-starts", "64", "--batch-size", "16", "--buffer-capacity", "512",
    "--gradient-steps", "1", "--target-update-every", "16", "--eval-every-steps", "0", "--log-every-steps", "64",
    "--checkpoint-every-steps", "128", "--stop-at-return", "none", "--device", "cpu", "--no-save-plot", "--quiet",
]  # fmt: skip
MODES = {
    "single": [],
    "native": ["--env-backend", "torch"],
    "fused": ["--env-backend", "torch", "--fuse-step", "on"],
    "seeds": ["--seeds", "1-2"],
    "actors": ["--actors", "1", "--chunk-steps", "32", "--ray-cpus", "2"],
}
OPTIONS = {
    "per": ["--per"],
    "n_step": ["--n-step", "3"],
    "dueling": ["--network", "dueling"],
    "cnn": ["--env", "framestack_env:Frames84-v0", "--network", "nature_cnn", "--buffer-capacity", "256"],
    "frames": ["--env", "framestack_env:Frames-v0", "--replay-storage", "frames"],
    "fuse_step": ["--fuse-step", "on"],
    "compile": ["--compile", "on"],
    "resume": [],
}
REFUSED = {
    ("single", "fuse_step"): "--fuse-step on needs a native env",
    ("native", "cnn"): "torch",
    ("fused", "per"): "--fuse-step on needs",
    ("fused", "n_step"): "--fuse-step on needs",
    ("fused", "cnn"): "torch",
    ("native", "frames"): "torch",  # no native pixel env
    ("fused", "frames"): "torch",
    ("actors", "frames"): "--replay-storage frames",
    ("seeds", "fuse_step"): "--fuse-step on",
    ("actors", "fuse_step"): "--fuse-step on",
}
"""(mode, option) -> words the one-line refusal carries."""
SLOW_MODES = {"fused", "actors"}  # the fused step compiles on CPU; actors start Ray
SLOW_OPTIONS = {"compile", "cnn", "fuse_step"}


def _cell(mode: str, option: str) -> object:
    marks = []
    if mode == "actors":
        marks.append(pytest.mark.ray)
        marks.append(pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="needs the ray extra"))
    if (mode in SLOW_MODES or option in SLOW_OPTIONS) and (mode, option) not in REFUSED:
        marks.append(pytest.mark.slow)
    return pytest.param(mode, option, marks=marks, id=f"{mode}-{option}")


CELLS = [_cell(mode, option) for mode in MODES for option in OPTIONS]


def _run_folders(out: Path) -> list[Path]:
    """Every run folder under `out` (a group's members, or the one run)."""
    return sorted(path.parent for path in out.rglob("config.json"))


def _last_step(run_dir: Path) -> int:
    with (run_dir / "metrics.csv").open() as f:
        return max(int(row["env_steps"]) for row in csv.DictReader(f))


def _saved_storages(folder: Path) -> list[dict[str, object]]:
    """The replay storage state of each member in the newest checkpoint of a run or group folder."""
    from fastdqn.checkpoint import read_payload

    buffer = read_payload(sorted((folder / "checkpoints").glob("step-*.pt"))[-1], "cpu")["buffer"]
    return [dict(member["storage"]) for member in buffer.get("members", [buffer])]


@pytest.mark.parametrize(("mode", "option"), CELLS)
def test_option_in_mode_trains_or_is_refused_in_one_line(tmp_path: Path, mode: str, option: str) -> None:
    args = ["train", "--out", str(tmp_path), "--run-name", "r", *TINY, *MODES[mode], *OPTIONS[option]]
    result = runner.invoke(app, args)
    if (mode, option) in REFUSED:
        lines = [line for line in result.output.splitlines() if line.strip() and not line.startswith("note: no preset for ")]
        assert result.exit_code == 2, result.output
        assert len(lines) == 1 and lines[0].startswith("error:"), result.output
        assert REFUSED[mode, option] in lines[0]
        assert not list(tmp_path.rglob("metrics.csv")), "a refused run must leave no run folder behind"
        return
    assert result.exit_code == 0, result.output
    runs = _run_folders(tmp_path)
    assert len(runs) == (2 if mode == "seeds" else 1)
    if option == "resume":
        resumed = runner.invoke(app, ["train", "--resume", str(tmp_path / "r"), "--total-steps", "384", "--quiet"])
        assert resumed.exit_code == 0, resumed.output
    for run_dir in runs:
        saved = json.loads((run_dir / "config.json").read_text())
        assert _last_step(run_dir) == (384 if option == "resume" else 256)
        assert (run_dir / "final.pt").is_file()
        if option == "per":
            assert saved["per"] is True
        if option == "n_step":
            assert saved["n_step"] == 3
        if option in ("dueling", "cnn"):
            assert saved["network"] == OPTIONS[option][-3 if option == "cnn" else -1]
        if option == "compile":
            assert saved["compile"] == "on"
        if option == "frames":
            assert saved["replay_storage"] == "frames"
            storages = _saved_storages(tmp_path / "r")
            assert len(storages) == len(runs) and all("frames" in storage for storage in storages)  # rows went to frame storage
