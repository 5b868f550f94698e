"""A group's summary: `summary.csv` (one row per member) and `returns.png` (IQM with a bootstrap band).

Aggregates follow rliable (Agarwal et al. 2021): the interquartile mean (the mean of the middle
50% of runs, `scipy.stats.trim_mean(x, 0.25)`) with a 95% stratified-bootstrap confidence band,
the runs resampled with replacement within each stratum (here: each grid value, one task).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from fastdqn.config import Config
from fastdqn.metrics import Metrics
from fastdqn.run_state import RunResult

SUMMARY_COLUMNS = ("member", "seed", "status", "solved_at_step", "solved_at_seconds", "best_eval", "final_eval", "env_steps", "updates")


def iqm(values: np.ndarray, axis: int = 0) -> np.ndarray:
    """Interquartile mean along `axis`: drop the lowest and highest quarter (floor), average the rest."""
    ordered = np.sort(values, axis=axis)
    m = ordered.shape[axis]
    cut = math.floor(0.25 * m)
    kept = np.take(ordered, np.arange(cut, m - cut), axis=axis)
    return np.asarray(kept.mean(axis=axis))


def bootstrap_iqm_band(values: np.ndarray, reps: int = 2000, seed: int = 0, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) of the IQM over runs: values (runs, points) -> two (points,) arrays.

    Resamples the runs with replacement `reps` times (the whole curve of a run moves together).
    """
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, values.shape[0], size=(reps, values.shape[0]))
    resampled = iqm(values[picks], axis=1)  # (reps, points)
    tail = (1 - level) / 2 * 100
    return np.percentile(resampled, tail, axis=0), np.percentile(resampled, 100 - tail, axis=0)


def write_summary(group_dir: Path, cfgs: Sequence[Config], results: Sequence[RunResult], status: Sequence[str]) -> Path:
    """`summary.csv`: per member its folder, seed, how it ended, when it solved, best and final evaluation."""
    path = group_dir / "summary.csv"
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(SUMMARY_COLUMNS)
        for cfg, result, state in zip(cfgs, results, status, strict=True):
            final_eval = result.eval_history[-1][1] if result.eval_history else None
            writer.writerow(
                [
                    result.run_dir.name,
                    cfg.seed,
                    state,
                    _cell(result.solved_at_step),
                    _cell(None if result.solved_at_seconds is None else round(result.solved_at_seconds, 3)),
                    _cell(result.best_eval_return),
                    _cell(final_eval),
                    result.env_steps,
                    result.agent.updates,
                ]
            )
    return path


def _cell(value: float | int | None) -> str:
    return "" if value is None else str(value)


def eval_curves(run_dirs: Sequence[Path]) -> tuple[np.ndarray, np.ndarray]:
    """(steps (T,), returns (runs, T)): each run's greedy evaluation means on the union of their
    evaluation steps; a run that stopped holds its last value from there on (the policy it returned)."""
    from fastdqn.compare import load_run

    series = [load_run(d).series("eval_return_mean") for d in run_dirs]
    steps = np.unique(np.concatenate([s for s, _ in series]))
    curves = np.full((len(series), steps.size), np.nan)
    for i, (x, y) in enumerate(series):
        if x.size:
            at = np.searchsorted(x, steps, side="right") - 1  # the latest evaluation at or before each step
            curves[i] = np.where(at >= 0, y[np.clip(at, 0, None)], np.nan)
    return steps, curves


def plot_group_returns(group_dir: Path, run_dirs: Sequence[Path], out: Path | None = None) -> Path:
    """`returns.png`: each member's evaluation curve faint, the IQM over members bold, and its 95%
    bootstrap band; one colour per grid value (members that differ only in seed)."""
    import json

    from fastdqn.plot import new_figure, save_figure

    arms: dict[str, list[Path]] = {}
    for run_dir in run_dirs:
        arm = run_dir.name.rpartition("-s")[0] if "-s" in run_dir.name else ""
        arms.setdefault(arm or "seeds", []).append(run_dir)
    fig, ax = new_figure()
    for colour, (arm, dirs) in zip([f"C{i % 10}" for i in range(len(arms))], arms.items(), strict=True):
        steps, curves = eval_curves(dirs)
        if steps.size == 0:
            continue
        for curve in curves:
            ax.plot(steps, curve, color=colour, alpha=0.2, linewidth=0.8)
        known = ~np.isnan(curves).any(axis=0)  # points every member of the arm has reached
        mean = iqm(curves[:, known])
        low, high = bootstrap_iqm_band(curves[:, known])
        ax.plot(steps[known], mean, color=colour, linewidth=2.0, label=f"{arm}: IQM of {len(dirs)} runs")
        ax.fill_between(steps[known], low, high, color=colour, alpha=0.2, linewidth=0)
    env_id = json.loads((run_dirs[0] / "config.json").read_text()).get("env_id", "")
    ax.set_xlabel("env steps")
    ax.set_ylabel("greedy evaluation return")
    ax.set_title(f"{group_dir.name} ({env_id}): IQM, 95% bootstrap band")
    ax.grid(alpha=0.3)
    if arms:
        ax.legend(loc="best")
    return save_figure(fig, out or group_dir / "returns.png")


class GroupProgress:
    """The rich progress line of a group: env steps, members solved so far, IQM of recent returns."""

    def __init__(self, k: int, total_steps: int):
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.k = k
        self.progress = Progress(
            TextColumn(f"[bold]train x{k}"),
            BarColumn(),
            TextColumn("{task.completed:>9,.0f}/{task.total:,.0f} steps"),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            auto_refresh=False,
        )
        self.task = self.progress.add_task("train", total=total_steps, status="")
        self.progress.start()

    def update(self, env_steps: int, results: Sequence[RunResult], metrics: Sequence[Metrics]) -> None:
        solved = sum(r.solved_at_step is not None for r in results)
        recent = [float(np.mean(m.recent_returns)) for m in metrics if m.recent_returns]
        iqm_text = f"{iqm(np.array(recent)):.1f}" if recent else "-"
        self.progress.update(self.task, completed=env_steps, status=f"{solved}/{self.k} solved  IQM return {iqm_text}")
        self.progress.refresh()

    def close(self) -> None:
        self.progress.stop()
