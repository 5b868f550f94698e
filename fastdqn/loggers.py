"""TensorBoard and Weights & Biases: each `metrics.csv` row, as it is written, goes to the trackers asked for.

The CSVs stay the source of truth; a tracker gets the same numbers at the same env steps, under
SB3-style names (`rollout/return_mean`, `train/loss`, `eval/return_mean`, ...), and the config as
hyperparameters. Each tracker is an extra (`pip install -e ".[tensorboard]"`, `".[wandb]"`) imported
only when `--log` names it.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import secrets
import string
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

from fastdqn.config import Config, ConfigError

# metrics.csv column -> tracker tag; env_steps is the x axis (the step) of every one
TAGS = {
    "return_mean": "rollout/return_mean",
    "length_mean": "rollout/length_mean",
    "episodes": "rollout/episodes",
    "epsilon": "rollout/epsilon",
    "loss": "train/loss",
    "q_mean": "train/q_mean",
    "updates": "train/updates",
    "sps": "time/sps",
    "wall_s": "time/wall_s",
    "eval_return_mean": "eval/return_mean",
    "eval_return_std": "eval/return_std",
}
EXTRAS = {"tensorboard": ("tensorboard", "tensorboard"), "wandb": ("wandb", "wandb")}  # --log name -> (module, extra)


class RunLogger(Protocol):
    def log_row(self, row: dict[str, Any]) -> None:
        """One metrics.csv row (empty cells are "")."""

    def close(self) -> None: ...


def require_loggers(names: Iterable[str]) -> None:
    """Import the tracker packages `names` need; a missing one is a ConfigError naming its extra."""
    for name in names:
        module, extra = EXTRAS[name]
        try:
            importlib.import_module(module)
        except ImportError:
            raise ConfigError(f'--log {name} needs the {module} package; install it with: pip install -e ".[{extra}]"') from None


def open_loggers(cfg: Config, run_dir: Path, resume_at: int | None = None) -> list[RunLogger]:
    """The trackers `cfg.log` names, writing into `run_dir`; `resume_at` drops what they hold past that step."""
    require_loggers(cfg.log)
    opened: list[RunLogger] = []
    try:
        for name in cfg.log:
            opened.append(TensorBoardLogger(cfg, run_dir, resume_at) if name == "tensorboard" else WandbLogger(cfg, run_dir, resume_at))
    except BaseException:
        for logger in opened:
            logger.close()
        raise
    return opened


def scalars(row: dict[str, Any]) -> dict[str, float]:
    """The row's filled cells under their tracker tags."""
    return {tag: float(row[column]) for column, tag in TAGS.items() if row.get(column, "") != ""}


def hyperparameters(cfg: Config) -> dict[str, int | float | str | bool]:
    """The config as flat scalars: None becomes "none", tuples and dicts become text."""
    flat: dict[str, int | float | str | bool] = {}
    for name, value in dataclasses.asdict(cfg).items():
        if value is None:
            flat[name] = "none"
        elif isinstance(value, int | float | str | bool):
            flat[name] = value
        else:
            flat[name] = json.dumps(value, sort_keys=True)
    return flat


class TensorBoardLogger:
    """Event files in the run folder itself, so `tensorboard --logdir runs` lists runs by name (as CleanRL's do).

    The config goes in twice: as hparams (TensorBoard's HPARAMS tab compares runs by them) and as a
    markdown table under the TEXT tab, as CleanRL writes it.
    """

    def __init__(self, cfg: Config, run_dir: Path, resume_at: int | None = None):
        from torch.utils.tensorboard import SummaryWriter
        from torch.utils.tensorboard.summary import hparams

        # purge_step hides events a crashed run wrote past its checkpoint, as metrics.csv drops its rows; the
        # row at the checkpoint's own step is kept there, and it purges steps >= purge_step, hence the + 1
        self.writer = SummaryWriter(log_dir=str(run_dir), purge_step=None if resume_at is None else resume_at + 1)
        if resume_at is None:
            params = hyperparameters(cfg)
            experiment, start, end = hparams(params, {"eval/return_mean": 0.0, "rollout/return_mean": 0.0})
            # opened by the constructor (SB3 writes hparams the same way); torch types the attribute by its initial None
            file_writer: Any = self.writer.file_writer
            for summary in (experiment, start, end):
                file_writer.add_summary(summary)
            table = "\n".join(f"|{name}|{value}|" for name, value in params.items())
            self.writer.add_text("hyperparameters", f"|param|value|\n|-|-|\n{table}")

    def log_row(self, row: dict[str, Any]) -> None:
        step = int(row["env_steps"])
        for tag, value in scalars(row).items():
            self.writer.add_scalar(tag, value, step)
        self.writer.flush()  # the CSVs are flushed every row too: a crash loses nothing written

    def close(self) -> None:
        self.writer.close()


class WandbLogger:
    """One W&B run per run folder, named after it, with its files in `run_dir/wandb/`.

    `WANDB_MODE=offline` (read by wandb itself) keeps everything on disk for `wandb sync`. A resumed
    run continues the same W&B run: its id is kept in `run_dir/wandb/fastdqn-run-id`. W&B keeps
    steps increasing, so rows re-logged after a crash between checkpoints are dropped there.
    """

    def __init__(self, cfg: Config, run_dir: Path, resume_at: int | None = None):
        import wandb

        folder = run_dir / "wandb"
        folder.mkdir(parents=True, exist_ok=True)
        id_file = folder / "fastdqn-run-id"
        run_id = id_file.read_text().strip() if resume_at is not None and id_file.exists() else _new_run_id()
        id_file.write_text(run_id + "\n")
        try:
            self.run = wandb.init(
                project=cfg.wandb_project,
                entity=cfg.wandb_entity,
                name=run_dir.name,
                id=run_id,
                resume="allow",
                dir=str(run_dir),
                config=dataclasses.asdict(cfg),
            )
        except wandb.errors.Error as error:  # no API key without a terminal to ask for one, no network, a bad entity
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise ConfigError(
                f"--log wandb: W&B could not start a run ({reason}); run `wandb login`, or set WANDB_MODE=offline to keep it in {folder}"
            ) from None

    def log_row(self, row: dict[str, Any]) -> None:
        step = int(row["env_steps"])
        self.run.log({**scalars(row), "env_steps": step}, step=step)  # the x axis is env steps, as in SB3

    def close(self) -> None:
        self.run.finish()


def _new_run_id() -> str:
    """Eight lowercase letters and digits, the form of W&B's own run ids."""
    return "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8))
