"""Quiet run configs for tests: on CPU, no plot, no stop on solving, evaluation off unless asked for."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import fastdqn

QUIET: dict[str, Any] = {"eval_every_steps": 0, "stop_at_return": None, "device": "cpu", "save_plot": False}


def quiet_config(out_dir: Path | str, **values: Any) -> fastdqn.Config:
    return fastdqn.Config(**{**QUIET, "out_dir": str(out_dir), **values})


def counter_config(out_dir: Path | str, **values: Any) -> fastdqn.Config:
    """Three interleaved toy Counter envs, a small ring and small batches."""
    return quiet_config(
        out_dir, **{"env_id": "toyenv:Counter-v0", "num_envs": 3, "learning_starts": 60, "buffer_capacity": 1000, "batch_size": 8, **values}
    )
