"""Run metrics: per-episode returns, one CSV row per log interval, and the rich progress bar.

Everything here runs at episode ends or log intervals on host numbers; the loss and Q statistics
arrive as device tensors and are read back (one sync) only when a row is written.
"""

from __future__ import annotations

import csv
import itertools
import math
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from torch import Tensor

if TYPE_CHECKING:
    from fastdqn.config import Config
    from fastdqn.evaluate import Evaluation
    from fastdqn.loggers import RunLogger

COLUMNS = (
    "env_steps",
    "updates",
    "wall_s",
    "sps",
    "episodes",
    "return_mean",
    "length_mean",
    "loss",
    "q_mean",
    "epsilon",
    "eval_return_mean",
    "eval_return_std",
    "eval_complete",
)
EPISODE_COLUMNS = ("env_steps", "return", "length")


class Metrics:
    """Writes `metrics.csv` and `episodes.csv` into `run_dir` and drives an optional progress bar.

    Args:
        start_time: `time.perf_counter()` at the start of the run, so wall seconds include set-up.
        recent: episodes averaged into `return_mean`.
        config: the run's config; its `log` names trackers (loggers.py) that get every row too.
    """

    def __init__(
        self,
        run_dir: Path,
        total_steps: int,
        start_time: float,
        show_progress: bool = False,
        recent: int = 20,
        resume_at: int | None = None,
        state: dict[str, Any] | None = None,
        config: Config | None = None,
    ):
        self.loggers: list[RunLogger] = []
        if config is not None and config.log:
            from fastdqn.loggers import open_loggers

            self.loggers = open_loggers(config, run_dir, resume_at)  # first: a missing extra fails before any file is opened
        self.start_time = start_time
        self.rows: list[dict[str, Any]] = []
        self.recent_returns: deque[float] = deque(maxlen=recent)
        self.recent_lengths: deque[int] = deque(maxlen=recent)
        self.episodes = 0
        self._last_time = time.perf_counter()
        self._last_steps = 0
        if resume_at is not None:
            # rows written after the checkpoint (a crash between checkpoints) are dropped, so the
            # resumed run appends exactly where the checkpoint left off: no duplicate, no gap
            self.rows = [_parse(row) for row in _keep_rows(run_dir / "metrics.csv", COLUMNS, resume_at)]
            _keep_rows(run_dir / "episodes.csv", EPISODE_COLUMNS, resume_at)
            self._last_steps = resume_at
        if state is not None:
            self.episodes = int(state["episodes"])
            self.recent_returns.extend(state["recent_returns"])
            self.recent_lengths.extend(state["recent_lengths"])
        mode = "w" if resume_at is None else "a"
        self._metrics_file = open(run_dir / "metrics.csv", mode, newline="")  # noqa: SIM115 (closed in close())
        self._metrics = csv.DictWriter(self._metrics_file, fieldnames=COLUMNS)
        self._episodes_file = open(run_dir / "episodes.csv", mode, newline="")  # noqa: SIM115
        self._episodes = csv.writer(self._episodes_file)
        if resume_at is None:
            self._metrics.writeheader()
            self._episodes.writerow(EPISODE_COLUMNS)
        self.progress: Any = None
        if show_progress:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self.progress = Progress(
                TextColumn("[bold]train"),
                BarColumn(),
                TextColumn("{task.completed:>9,.0f}/{task.total:,.0f} steps"),
                TextColumn("{task.fields[status]}"),
                TimeElapsedColumn(),
                auto_refresh=False,  # refreshed at log intervals only: no thread competing for the CPU
            )
            self._task = self.progress.add_task("train", total=total_steps, completed=self._last_steps, status="")
            self.progress.start()

    def add_episodes(self, env_steps: int, returns: np.ndarray, lengths: np.ndarray) -> None:
        """Episodes that ended at `env_steps`: returns (K,), lengths (K,)."""
        returns_list, lengths_list = returns.tolist(), lengths.tolist()
        # one writerows call: with 256 envs a dozen episodes end every step, and a Python loop of
        # writerow calls cost a tenth of collection time
        self._episodes.writerows(zip(itertools.repeat(env_steps), returns_list, lengths_list))
        self.recent_returns.extend(returns_list)
        self.recent_lengths.extend(lengths_list)
        self.episodes += len(returns_list)

    def log(
        self, env_steps: int, updates: int, epsilon: float, stats: dict[str, Tensor] | None, evaluation: Evaluation | None = None
    ) -> dict[str, Any]:
        """Write one metrics row. An evaluation cut short (it could no longer reach `stop_at_return`)
        has `eval_complete` 0 and the partial mean of its episodes, a lower bound."""
        eval_returns = evaluation.returns if evaluation is not None else None
        now = time.perf_counter()
        elapsed = now - self._last_time
        row: dict[str, Any] = {
            "env_steps": env_steps,
            "updates": updates,
            "wall_s": round(now - self.start_time, 4),
            "sps": round((env_steps - self._last_steps) / elapsed, 1) if elapsed > 0 else "",
            "episodes": self.episodes,
            "return_mean": round(float(np.mean(self.recent_returns)), 3) if self.recent_returns else "",
            "length_mean": round(float(np.mean(self.recent_lengths)), 2) if self.recent_lengths else "",
            "loss": round(stats["loss"].item(), 6) if stats is not None else "",  # the sync point: once per row
            "q_mean": round(stats["q_mean"].item(), 4) if stats is not None else "",
            "epsilon": round(epsilon, 4),
            "eval_return_mean": round(float(eval_returns.mean()), 3) if eval_returns is not None else "",
            "eval_return_std": round(float(eval_returns.std()), 3) if eval_returns is not None else "",
            "eval_complete": int(evaluation.complete) if evaluation is not None else "",
        }
        self._last_time, self._last_steps = now, env_steps
        self.rows.append(row)
        self._metrics.writerow(row)
        self._metrics_file.flush()
        self._episodes_file.flush()
        for logger in self.loggers:
            logger.log_row(row)
        if self.progress is not None:
            status = f"{_fmt(row['sps'], ',.0f')} steps/s  return {_fmt(row['return_mean'], '.1f')}  eps {epsilon:.3f}  loss {_fmt(row['loss'], '.4f')}"
            if eval_returns is not None:
                status += f"  eval {row['eval_return_mean']:.1f}"
            self.progress.update(self._task, completed=env_steps, status=status)
            self.progress.refresh()
        return row

    def flush(self) -> None:
        """Hand every row written so far to the OS: a checkpoint's rows must outlive a crash right after it."""
        for file in (self._metrics_file, self._episodes_file):
            if not file.closed:  # a stopped group member's files are closed already
                file.flush()

    def state_dict(self) -> dict[str, Any]:
        return {"episodes": self.episodes, "recent_returns": list(self.recent_returns), "recent_lengths": list(self.recent_lengths)}

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
        self._metrics_file.close()
        self._episodes_file.close()
        for logger in self.loggers:
            logger.close()


def _fmt(value: Any, spec: str) -> str:
    if value == "" or value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value, spec)


RUN_CSVS = {"metrics.csv": COLUMNS, "episodes.csv": EPISODE_COLUMNS}
"""The CSV files every run folder holds, with their columns."""


def read_rows(path: Path, columns: tuple[str, ...], up_to_step: int) -> tuple[list[dict[str, str]], str]:
    """The rows of a fastdqn CSV file up to env step `up_to_step`, each checked; a damaged one is refused
    in one line (ConfigError).

    Rows are appended in step order, so the first row past `up_to_step` and everything after it were
    written after the checkpoint being resumed: they are dropped unread, whatever they hold.

    Returns:
        (rows, torn): `torn` is a last line without its line end (a write cut off by a crash or a
        full disk) among the rows kept, left out so that it is never written back; "" when none.
    """
    from fastdqn.config import ConfigError

    try:
        with path.open(encoding="utf-8", newline="") as f:
            text = f.read()
    except FileNotFoundError:
        raise ConfigError(f"{path} is missing; a run folder needs it to be resumed (put it back, or start a new run)") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path} cannot be read ({error}); put back a good copy, or start a new run") from None
    body, _, torn = text.rpartition("\n")
    lines = [line.removesuffix("\r") for line in body.split("\n")] if body or text.endswith("\n") else []
    header = tuple(next(csv.reader(lines[:1]), []))
    if not header or columns[: len(header)] != header:  # columns are only ever appended: an older run's file is a prefix
        raise ConfigError(f"{path} does not start with fastdqn's header ({','.join(columns)}); put back a good copy, or start a new run")
    rows: list[dict[str, str]] = []
    for number, fields in enumerate(csv.reader(lines[1:]), start=2):
        if fields and fields[0].isdigit() and int(fields[0]) > up_to_step:
            return rows, ""  # this row and every later one (the torn one too) postdate the checkpoint
        problem = _row_problem(fields, header)
        if problem:
            raise ConfigError(f"{path} line {number} is damaged ({problem}); repair or delete that line, then resume again")
        rows.append({name: "" for name in columns} | dict(zip(header, fields, strict=True)))
    return rows, torn


def _row_problem(fields: list[str], columns: tuple[str, ...]) -> str:
    if len(fields) != len(columns):
        return f"{len(fields)} fields, {len(columns)} expected"
    for name, text in zip(columns, fields, strict=True):
        try:
            if name in ("env_steps", "updates", "episodes", "length"):
                int(text)
            elif text != "":
                float(text)
        except ValueError:
            return f"{name}={text!r} is not a number"
    return ""


def check_run_csvs(run_dir: Path, up_to_step: int, files: dict[str, tuple[str, ...]] = RUN_CSVS) -> list[str]:
    """Check a run folder's CSV `files` before a resume cuts them back to `up_to_step`; returns a note per torn last line."""
    notes = []
    for name, columns in files.items():
        _, torn = read_rows(run_dir / name, columns, up_to_step)
        if torn:
            notes.append(f"{run_dir / name}: its last line was cut off mid-write ({torn[:40]!r}); it is dropped")
    return notes


def _keep_rows(path: Path, columns: tuple[str, ...], up_to_step: int) -> list[dict[str, str]]:
    """Rewrite `path` keeping the rows with env_steps <= up_to_step (never a torn last line); returns them."""
    rows = read_rows(path, columns, up_to_step)[0] if path.exists() else []
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)
    return rows


def _parse(row: dict[str, str]) -> dict[str, Any]:
    parsed: dict[str, Any] = {}
    for key, text in row.items():
        if text == "":
            parsed[key] = ""
        else:
            number = float(text)
            parsed[key] = int(number) if number.is_integer() and "." not in text else number
    return parsed
