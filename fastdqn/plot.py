"""`returns.png`: training episode returns (raw and smoothed) and greedy evaluation means by env step."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def smooth(values: list[float], weight: float = 0.9) -> list[float]:
    """The tutorial's exponential smoothing: `s_t = weight * s_{t-1} + (1 - weight) * x_t`, `s_0 = x_0`."""
    smoothed: list[float] = []
    for value in values:
        smoothed.append(value if not smoothed else weight * smoothed[-1] + (1 - weight) * value)
    return smoothed


def _read_csv(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def new_figure(width: float = 8.0, height: float = 4.5) -> tuple[Figure, Axes]:
    """A figure with one axes, for a file only: matplotlib's object API (no pyplot state, no backend
    switch, half pyplot's import), so a group can draw its K + 1 plots one after another cheaply."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    return fig, fig.subplots()


def save_figure(fig: Figure, out: Path) -> Path:
    """Write `fig` as a PNG with fixed margins: `tight_layout` measured every tick label and took
    40% of a plot's time, which a group pays once per member."""
    fig.subplots_adjust(left=0.09, right=0.98, bottom=0.11, top=0.92)
    fig.savefig(out, dpi=110)
    return out


def plot_run(run_dir: Path, out: Path | None = None) -> Path:
    """Draw the run's curves into `out` (default `run_dir/returns.png`) and return its path."""
    episodes = _read_csv(run_dir / "episodes.csv")
    evals = [row for row in _read_csv(run_dir / "metrics.csv") if row.get("eval_return_mean")]
    if not episodes and not evals:
        raise ValueError(f"{run_dir} has no episodes.csv or metrics.csv rows to plot; is it a fastdqn run folder?")
    fig, ax = new_figure()
    if episodes:
        steps = [int(row["env_steps"]) for row in episodes]
        returns = [float(row["return"]) for row in episodes]
        ax.plot(steps, returns, color="tab:blue", alpha=0.25, linewidth=0.8, label="training episode return")
        ax.plot(steps, smooth(returns), color="tab:blue", linewidth=1.8, label="smoothed (0.9)")
    if evals:
        ax.plot(
            [int(row["env_steps"]) for row in evals],
            [float(row["eval_return_mean"]) for row in evals],
            "o-",
            color="tab:orange",
            markersize=3,
            label="greedy evaluation mean",
        )
    ax.set_xlabel("env steps")
    ax.set_ylabel("episode return")
    ax.set_title(run_dir.name)
    ax.grid(alpha=0.3)
    ax.legend(loc="best")
    return save_figure(fig, out or run_dir / "returns.png")
