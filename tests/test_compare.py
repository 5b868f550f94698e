"""`fastdqn compare RUN_OR_GROUP...`: the table's values and the curves come from the runs' metrics.csv."""

from __future__ import annotations

import csv
import json
import statistics
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from fastdqn import cli
from fastdqn.cli import app
from fastdqn.compare import band, load_entry, summary_row
from fastdqn.metrics import COLUMNS

runner = CliRunner()
SMALL = ["--device", "cpu", "--num-envs", "4", "--learning-starts", "300", "--eval-every-steps", "500", "--eval-episodes", "3"]
SMALL += ["--log-every-steps", "500", "--quiet", "--no-save-plot"]


def fake_run(folder: Path, evals: dict[int, float], returns: dict[int, float], seconds_per_step: float, stop_at: float | None) -> Path:
    """A run folder as train writes it: config.json and metrics.csv rows (eval cells only at `evals`' steps)."""
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"stop_at_return": stop_at, "env_id": "CartPole-v1"}))
    with (folder / "metrics.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        for step in sorted(set(evals) | set(returns)):
            row = dict.fromkeys(COLUMNS, "")
            row.update(
                env_steps=step, wall_s=step * seconds_per_step, return_mean=returns.get(step, ""), eval_return_mean=evals.get(step, "")
            )
            writer.writerow(row)
    return folder


def table_rows(output: str) -> dict[str, list[str]]:
    """The rich table's body rows, keyed by their first cell."""
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in output.splitlines() if line.startswith("│")]
    return {row[0]: row[1:] for row in rows}


def test_group_curve_is_the_member_mean_with_a_min_max_band_and_stopped_runs_hold_their_last_value(tmp_path: Path) -> None:
    fake_run(tmp_path / "g" / "s1", {100: 10.0, 200: 30.0}, {}, 0.01, 25.0)  # solved at 200 and stopped
    fake_run(tmp_path / "g" / "s2", {100: 20.0, 200: 10.0, 300: 40.0}, {}, 0.02, 25.0)
    fake_run(tmp_path / "g" / "s3", {150: 0.0, 300: 60.0}, {}, 0.04, 25.0)
    (tmp_path / "g" / "notes").mkdir()  # not a run folder: ignored
    entry = load_entry(tmp_path / "g")
    assert entry.is_group and [run.folder.name for run in entry.runs] == ["s1", "s2", "s3"]
    steps, mean, low, high = band(entry.runs, "eval_return_mean")
    assert steps.tolist() == [100, 150, 200, 300]
    s3_at_200 = 0.0 + (60.0 - 0.0) * (200 - 150) / (300 - 150)  # interpolated between its rows
    members = np.array([[10.0, 20.0, 30.0, 30.0], [20.0, 15.0, 10.0, 40.0], [np.nan, 0.0, s3_at_200, 60.0]])
    assert mean == pytest.approx(np.nanmean(members, axis=0))
    assert low == pytest.approx(np.nanmin(members, axis=0)) and high == pytest.approx(np.nanmax(members, axis=0))
    row = summary_row(entry)
    assert row["best eval"] == f"{statistics.mean([30, 40, 60]):.1f} ± {statistics.pstdev([30, 40, 60]):.1f}"
    assert row["solved"] == "3/3"
    assert row["solved at step"] == "300"  # median of 200, 300, 300
    assert row["solved at s"] == f"{statistics.median([2.0, 6.0, 12.0]):.1f}"
    assert row["env steps/s"] == f"{statistics.mean([100, 50, 25]):,.0f}"
    assert summary_row(entry, solved_at=50.0)["solved"] == "1/3"


def test_cli_compare_tabulates_fresh_runs_and_a_group_from_their_metrics(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for seed in (1, 2):
        args = ["train", "--preset", "cartpole-fast", "--out", str(tmp_path / "seeds"), "--run-name", f"s{seed}", "--seed", str(seed)]
        args += ["--total-steps", "1500"]
        assert runner.invoke(app, [*args, *SMALL, "--stop-at-return", "100"]).exit_code == 0
    single = [
        "train",
        "--preset",
        "cartpole-fast",
        "--out",
        str(tmp_path),
        "--run-name",
        "one",
        "--seed",
        "3",
        "--total-steps",
        "1000",
        "--stop-at-return",
        "none",
    ]
    assert runner.invoke(app, [*single, *SMALL]).exit_code == 0
    out = tmp_path / "report" / "compare.png"
    monkeypatch.setattr(cli.console, "width", 200)  # no cell wraps onto a second line: table_rows reads one line per row
    result = runner.invoke(app, ["compare", str(tmp_path / "seeds"), str(tmp_path / "one"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = table_rows(result.output)

    def evals(run: Path) -> list[tuple[int, float, float]]:
        with (run / "metrics.csv").open(newline="") as f:
            return [
                (int(r["env_steps"]), float(r["eval_return_mean"]), float(r["wall_s"])) for r in csv.DictReader(f) if r["eval_return_mean"]
            ]

    members = [evals(tmp_path / "seeds" / name) for name in ("s1", "s2")]
    bests = [max(value for _, value, _ in member) for member in members]
    runs, best, solved, _step, _seconds, _speed = rows["seeds/"]
    assert runs == "2" and best == f"{statistics.mean(bests):.1f} ± {statistics.pstdev(bests):.1f}"
    firsts = [next(((step, wall) for step, value, wall in member if value >= 100), None) for member in members]
    assert solved == f"{sum(first is not None for first in firsts)}/2"
    one = evals(tmp_path / "one")
    runs, best, solved, step, seconds, speed = rows["one"]
    assert (runs, best, solved, step, seconds) == ("1", f"{max(value for _, value, _ in one):.1f}", "-", "-", "-")
    assert speed == f"{1000 / one[-1][2]:,.0f}"  # the last row is an evaluation row at 1000 steps
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image

    image = matplotlib.image.imread(out)
    assert image.shape[:2] == (495, 1320)  # 12 x 4.5 inches at 110 dpi: both panels
    assert (image[..., :3].std(axis=2) > 0.1).sum() > 1000  # coloured curves were drawn, not an empty frame


def test_cli_compare_of_a_folder_without_runs_is_one_line_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = runner.invoke(app, ["compare", str(tmp_path / "empty"), "--out", str(tmp_path / "c.png")])
    assert result.exit_code == 2
    assert "is neither a run folder (config.json + metrics.csv) nor a group folder" in " ".join(result.output.split())
    assert not (tmp_path / "c.png").exists()
