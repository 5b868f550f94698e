"""`fastdqn compare RUN_OR_GROUP...`: one PNG of returns against env steps and one table, for a report.

A run folder (config.json + metrics.csv) is one curve. A group is a folder whose subfolders are run
folders, e.g. one run per seed: its curve is the mean over the members with a band from their
minimum to their maximum. Members are put on a common env-step grid by linear interpolation
between their log rows; a member that stopped early (solved) holds its last value from there on,
which is the policy it returned.
"""

from __future__ import annotations

import csv
import json
import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fastdqn.config import ConfigError


@dataclass(frozen=True)
class Run:
    folder: Path
    config: dict[str, Any]
    rows: list[dict[str, str]]
    """metrics.csv rows as written (empty cells are "")."""

    def series(self, column: str) -> tuple[np.ndarray, np.ndarray]:
        """(env_steps, values) of the rows where `column` is filled, both float64."""
        filled = [row for row in self.rows if row.get(column, "") != ""]
        return np.array([float(row["env_steps"]) for row in filled]), np.array([float(row[column]) for row in filled])


@dataclass(frozen=True)
class RunStats:
    threshold: float | None
    """The return that counts as solved (None: no threshold, so solved is not asked)."""
    best_eval: float | None
    solved_at_step: int | None
    solved_at_seconds: float | None
    env_steps: int
    steps_per_second: float | None
    """Env steps over wall seconds of the last row, set-up and evaluations included (as `train` prints it)."""


@dataclass(frozen=True)
class Entry:
    """One argument of `compare`: a single run, or a group of runs."""

    label: str
    runs: list[Run]
    is_group: bool


def is_run(folder: Path) -> bool:
    return (folder / "config.json").is_file() and (folder / "metrics.csv").is_file()


def load_run(folder: Path) -> Run:
    try:
        config = json.loads((folder / "config.json").read_text())
        with (folder / "metrics.csv").open(newline="") as f:
            rows = list(csv.DictReader(f))
    except (OSError, ValueError) as error:
        raise ConfigError(f"{folder}: cannot read its config.json and metrics.csv ({error})") from None
    if not rows:
        raise ConfigError(f"{folder}: metrics.csv has no rows yet; compare runs once they have logged")
    return Run(folder, config, rows)


def load_entry(path: Path) -> Entry:
    """A run folder, or a group folder of run folders; anything else is a ConfigError naming what was expected."""
    if is_run(path):
        return Entry(path.name, [load_run(path)], is_group=False)
    members = sorted(child for child in path.iterdir() if is_run(child)) if path.is_dir() else []
    if not members:
        raise ConfigError(
            f"{path} is neither a run folder (config.json + metrics.csv) nor a group folder of run folders; pass runs/<run> or runs/<group>"
        )
    return Entry(path.name, [load_run(member) for member in members], is_group=True)


def run_stats(run: Run, solved_at: float | None = None) -> RunStats:
    """Best greedy evaluation, the first evaluation reaching `solved_at` (default: the run's stop_at_return), speed."""
    threshold = solved_at if solved_at is not None else run.config.get("stop_at_return")
    eval_rows = [row for row in run.rows if row.get("eval_return_mean", "") != ""]
    solved = next((row for row in eval_rows if threshold is not None and float(row["eval_return_mean"]) >= threshold), None)
    last = run.rows[-1]
    seconds = float(last["wall_s"]) if last.get("wall_s", "") != "" else 0.0
    return RunStats(
        threshold=threshold,
        best_eval=max(float(row["eval_return_mean"]) for row in eval_rows) if eval_rows else None,
        solved_at_step=int(solved["env_steps"]) if solved is not None else None,
        solved_at_seconds=float(solved["wall_s"]) if solved is not None and solved.get("wall_s", "") != "" else None,
        env_steps=int(last["env_steps"]),
        steps_per_second=int(last["env_steps"]) / seconds if seconds > 0 else None,
    )


def band(runs: list[Run], column: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(steps, mean, low, high) of `column` over `runs` on the union of their env steps.

    Each run is interpolated linearly between its rows, is NaN before its first row, and holds its
    last value after its last row. Returns empty arrays where no run has the column filled.
    """
    series = [run.series(column) for run in runs]
    series = [(steps, values) for steps, values in series if len(steps)]
    if not series:
        empty = np.zeros(0)
        return empty, empty, empty, empty
    grid = np.unique(np.concatenate([steps for steps, _ in series]))
    table = np.stack([np.interp(grid, steps, values, left=math.nan, right=values[-1]) for steps, values in series])  # (R, G)
    counts = (~np.isnan(table)).sum(axis=0)
    keep = counts > 0
    table = table[:, keep]
    return grid[keep], np.nanmean(table, axis=0), np.nanmin(table, axis=0), np.nanmax(table, axis=0)


def summary_row(entry: Entry, solved_at: float | None = None) -> dict[str, str]:
    """The table's cells for one entry; groups give mean ± std (best eval), medians over solved members, mean speed."""
    stats = [run_stats(run, solved_at) for run in entry.runs]
    bests = [s.best_eval for s in stats if s.best_eval is not None]
    solved = [s for s in stats if s.solved_at_step is not None]
    speeds = [s.steps_per_second for s in stats if s.steps_per_second is not None]
    if not entry.is_group:
        (only,) = stats
        return {
            "best eval": "-" if only.best_eval is None else f"{only.best_eval:.1f}",
            "solved": "-" if only.threshold is None else ("yes" if solved else "no"),
            "solved at step": "-" if only.solved_at_step is None else f"{only.solved_at_step:,}",
            "solved at s": "-" if only.solved_at_seconds is None else f"{only.solved_at_seconds:.1f}",
            "env steps/s": "-" if only.steps_per_second is None else f"{only.steps_per_second:,.0f}",
        }
    seconds = [s.solved_at_seconds for s in solved if s.solved_at_seconds is not None]
    best = "-"
    if bests:
        best = f"{statistics.mean(bests):.1f} ± {statistics.pstdev(bests):.1f}" if len(bests) > 1 else f"{bests[0]:.1f}"
    return {
        "best eval": best,
        "solved": f"{len(solved)}/{len(stats)}" if any(s.threshold is not None for s in stats) else "-",
        "solved at step": f"{statistics.median([s.solved_at_step for s in solved if s.solved_at_step is not None]):,.0f}"
        if solved
        else "-",
        "solved at s": f"{statistics.median(seconds):.1f}" if seconds else "-",
        "env steps/s": f"{statistics.mean(speeds):,.0f}" if speeds else "-",
    }


def plot_compare(entries: list[Entry], out: Path) -> Path:
    """Greedy evaluation returns (left) and training returns (right) against env steps, one curve per entry."""
    import matplotlib

    matplotlib.use("Agg")  # files only
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharex=True)
    panels = (("eval_return_mean", "greedy evaluation return"), ("return_mean", "training return (mean of the last 20 episodes)"))
    for ax, (column, title) in zip(axes, panels, strict=True):
        for index, entry in enumerate(entries):
            steps, mean, low, high = band(entry.runs, column)
            if not len(steps):
                continue
            color = f"C{index % 10}"
            label = f"{entry.label} ({len(entry.runs)} runs, min-max band)" if entry.is_group else entry.label
            ax.plot(steps, mean, color=color, linewidth=1.8, label=label, marker="o" if len(steps) < 30 else None, markersize=3)
            if entry.is_group:
                ax.fill_between(steps, low, high, color=color, alpha=0.2, linewidth=0)
        ax.set_title(title)
        ax.set_xlabel("env steps")
        ax.set_ylabel("episode return")
        ax.grid(alpha=0.3)
        if ax.has_data():
            ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
