"""Non-finite values: caught where they enter (the env's arrays) and before anything is written (checkpoints).

Two causes look alike from the loss (NaN/inf) and need opposite fixes, so they are told apart where
each can be seen:
- the env returned NaN/inf rewards or observations: checked on the host arrays as they leave a
  Gymnasium env (`check_env_arrays`), one vectorized `np.isfinite` per array and step, before they
  reach the replay buffer. The fix is in the env, not in the learning rate.
- the update diverged (finite inputs, NaN/inf weights): the loop's finite check before an evaluation,
  a log row or a checkpoint. The fix is a lower learning rate or gradient clipping.
`require_finite_weights` is the last guard: no `.pt` file is written with non-finite weights.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fastdqn.config import FastDQNError

ENV_FIX = "check its step/reset, or wrap it (e.g. gymnasium.wrappers.TransformReward) to return finite values"
UPDATE_FIX = "lower --learning-rate or set --max-grad-norm"


class NonFiniteEnvOutput(FastDQNError):
    """The env produced NaN/inf rewards or observations; the loops add the env step (`at_step`)."""

    exit_code = 1

    def __init__(self, what: str, env_index: int, value: float):
        self.what, self.env_index, self.value = what, env_index, value
        super().__init__(self.at_step(None))

    def __reduce__(self) -> tuple[type[NonFiniteEnvOutput], tuple[str, int, float]]:
        return (NonFiniteEnvOutput, (self.what, self.env_index, self.value))  # crosses process boundaries (Ray actors)

    def at_step(self, env_steps: int | None) -> str:
        where = "" if env_steps is None else f" at env step {env_steps:,}"
        return (
            f"the env produced NaN/inf {self.what}{where} (env {self.env_index}, value {self.value}): "
            f"a fault of the env, not of the update; {ENV_FIX}; earlier checkpoints are kept"
        )


class NonFiniteWeights(FastDQNError):
    """A checkpoint of non-finite weights was about to be written; nothing was written."""

    exit_code = 1


def _first_bad(values: np.ndarray) -> tuple[int, float] | None:
    """(env, value) of the first non-finite entry of a float array (N, ...), or None when all are finite."""
    if values.dtype.kind != "f" or np.isfinite(values).all():  # integer and bool arrays cannot hold NaN/inf
        return None
    rows = values.reshape(len(values), -1)
    finite = np.isfinite(rows)
    env = int(np.flatnonzero(~finite.all(axis=1))[0])
    return env, float(rows[env][~finite[env]][0])


def check_env_arrays(obs: np.ndarray, rewards: np.ndarray | None = None) -> None:
    """Refuse NaN/inf in one vector step's host arrays: obs (N, *obs_shape), rewards (N,) float32.

    Raises:
        NonFiniteEnvOutput: naming rewards or observations and the first env that produced one.
    """
    # the fast path, one BLAS dot per array: x.x is finite when every entry is (one that overflowed,
    # |x| > ~1e19 in float32, goes on to the exact check below, which then finds nothing). A third
    # of `np.isfinite(x).all()`'s cost, and unlike a numpy sum it raises no overflow warnings.
    if (rewards is None or math.isfinite(np.vdot(rewards, rewards))) and (obs.dtype.kind != "f" or math.isfinite(np.vdot(obs, obs))):
        return
    if rewards is not None:
        bad = _first_bad(rewards)
        if bad is not None:
            raise NonFiniteEnvOutput("rewards", *bad)
    bad = _first_bad(obs)
    if bad is not None:
        raise NonFiniteEnvOutput("observations", *bad)


def _float_tensors(value: Any) -> Iterator[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        if value.is_floating_point():
            yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _float_tensors(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _float_tensors(item)


WEIGHT_SECTIONS = ("agent", "members")
"""The parts of a checkpoint payload that hold weights and optimizer state (a run's, or a group's stack)."""


def require_finite_weights(payload: dict[str, Any], path: Path) -> None:
    """Refuse to write `path` when the weights or optimizer state in `payload` hold NaN/inf."""
    for section in WEIGHT_SECTIONS:
        for tensor in _float_tensors(payload.get(section)):
            if not bool(torch.isfinite(tensor).all()):  # a sync per tensor, at checkpoint time only
                raise NonFiniteWeights(
                    f"refused to write {path}: the weights became NaN/inf (a diverging update); "
                    f"the files written before are kept; {UPDATE_FIX}"
                )
