"""`returns.png`: training episode returns (raw and smoothed) and greedy evaluation means by env step."""

from __future__ import annotations

import csv
from pathlib import Path


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


def plot_run(run_dir: Path, out: Path | None = None) -> Path:
    """Draw the run's curves into `out` (default `run_dir/returns.png`) and return its path."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display is needed or wanted
    import matplotlib.pyplot as plt

    episodes = _read_csv(run_dir / "episodes.csv")
    evals = [row for row in _read_csv(run_dir / "metrics.csv") if row.get("eval_return_mean")]
    if not episodes and not evals:
        raise ValueError(f"{run_dir} has no episodes.csv or metrics.csv rows to plot; is it a fastdqn run folder?")
    fig, ax = plt.subplots(figsize=(8, 4.5))
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
    fig.tight_layout()
    out = out or run_dir / "returns.png"
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
