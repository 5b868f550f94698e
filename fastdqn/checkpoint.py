"""Checkpoints: written atomically, loaded without executing code from the file."""

from __future__ import annotations

import os
import pickle
import re
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from fastdqn.config import ConfigError, FastDQNError
from fastdqn.finite import require_finite_weights


class CheckpointError(ConfigError):
    """A checkpoint is missing, unreadable or not fastdqn's; the message names the file."""


def save_atomic(payload: dict[str, Any], path: Path) -> Path:
    """Write `payload` so that `path` always holds either the old file or the whole new one.

    A temporary file in the same folder is written and fsynced, then `os.replace`d over `path`
    (atomic on POSIX and Windows), so a crash or `kill -9` mid-write never leaves a torn checkpoint.
    Weights that became NaN/inf are refused before anything is written (finite.py).
    """
    require_finite_weights(payload, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as tmp:
            torch.save(payload, tmp)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    if hasattr(os, "O_DIRECTORY"):
        dir_fd = os.open(path.parent, os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)  # make the rename itself durable
        finally:
            os.close(dir_fd)
    return path


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a fastdqn checkpoint that holds an agent (best.pt, final.pt, a run's step-*.pt) with `weights_only=True`."""
    payload = read_payload(path, map_location)
    if not isinstance(payload.get("agent"), dict) or payload["agent"].get("format") != "fastdqn-agent-1":
        raise CheckpointError(f"{path} is a torch file but not a fastdqn checkpoint (no fastdqn agent inside)")
    return payload


def read_payload(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load any fastdqn checkpoint (a group's too) with `weights_only=True`: tensors and plain types, never code."""
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder; pass a checkpoint file or a run folder to commands that take one")
    if not path.exists():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        raise CheckpointError(_refused(path, str(error))) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(f"{path} is not a readable fastdqn checkpoint (truncated, corrupted or foreign): {first_line}") from None
    if not isinstance(payload, dict):
        raise CheckpointError(f"{path} is a torch file but not a fastdqn checkpoint (no fastdqn agent inside)")
    return payload


def _refused(path: Path, torch_message: str) -> str:
    """fastdqn's own line for a file that unpickling refused.

    torch's message advises retrying with `weights_only=False`, which would run whatever code the
    file carries: the one thing to avoid with a file from someone else, so none of it is repeated.
    """
    found = re.search(r"Unsupported global: GLOBAL (\S+)", torch_message)
    if found:
        return (
            f"{path} holds Python objects or code, not only tensors and plain data (it asks for {found.group(1)}), so it is not a "
            f"fastdqn checkpoint and was not loaded; load only checkpoints written by fastdqn (best.pt, final.pt, checkpoints/step-*.pt)"
        )
    operand = re.search(r"Unsupported operand \S+", torch_message)
    if operand or "Weights only load failed" in torch_message:
        reason = operand.group(0) if operand else "refused by the weights-only unpickler"
    else:
        reason = torch_message.strip().splitlines()[0] if torch_message.strip() else "unpickling failed"
    return f"{path} is not a readable fastdqn checkpoint (truncated, corrupted or foreign): {reason}"


def find_checkpoint(run_or_file: Path, policy: str = "best") -> Path:
    """A checkpoint file as given, or a run folder's `policy`: `best` (its best evaluated policy, else
    its final one, where no evaluation ran) or `final` (the policy the run ended with)."""
    if run_or_file.is_dir():
        for name in ("best.pt", "final.pt") if policy == "best" else (f"{policy}.pt",):
            if (run_or_file / name).exists():
                return run_or_file / name
        raise CheckpointError(
            f"{run_or_file} holds no {' or '.join(('best.pt', 'final.pt') if policy == 'best' else (policy + '.pt',))}; is it a fastdqn run folder that ran to its end?"
        )
    return run_or_file


def checkpoint_path(run_dir: Path, env_steps: int) -> Path:
    return run_dir / "checkpoints" / f"step-{env_steps:012d}.pt"


def write_run_checkpoint(run_dir: Path, payload: dict[str, Any], env_steps: int, keep: int) -> Path:
    """Write a resumable checkpoint atomically, then delete all but the newest `keep`."""
    path = save_atomic(payload, checkpoint_path(run_dir, env_steps))
    for old in sorted((run_dir / "checkpoints").glob("step-*.pt"))[:-keep]:
        old.unlink(missing_ok=True)
    return path


def notice(text: str) -> None:
    """One line on stderr for what a command did on its own (a repair), so a log of the run keeps it."""
    print(f"fastdqn: {text}", file=sys.stderr, flush=True)


def newest_intact_checkpoint(run_dir: Path, load: Callable[[Path], dict[str, Any]]) -> dict[str, Any]:
    """The payload of the newest checkpoint of a run that `load` accepts; nothing is changed on disk.

    One that cannot be read (truncated by a full disk, damaged, incomplete) is passed over for the
    next older one; when none is readable the newest one's reason is given. The payload's `file`
    names the checkpoint, its `damaged` lists (file, reason) of those passed over, for
    `apply_repairs` once every other file of the run has been checked too.
    """
    found = sorted((run_dir / "checkpoints").glob("step-*.pt")) if run_dir.is_dir() else []
    if not found:
        latest_run_checkpoint(run_dir)  # the one-line refusal for a missing folder or checkpoint
    refused: list[CheckpointError] = []
    for path in reversed(found):
        try:
            payload = load(path)
        except CheckpointError as error:
            refused.append(error)
            continue
        damaged = [(str(bad), str(reason)) for bad, reason in zip(reversed(found), refused, strict=False)]
        return {**payload, "file": str(path), "damaged": damaged}
    raise CheckpointError(f"--resume {run_dir}: no checkpoint there can be used ({len(found)} tried); newest: {refused[0]}")


def apply_repairs(saved: dict[str, Any], folder: Path) -> None:
    """The first changes a resume makes, once every file has passed its checks and the checkpoint is
    back in place: the checkpoints passed over are renamed `damaged-step-*.pt` (kept for a look, never
    loaded, pruned or written over again), the repairs are said in one line each, and what a killed
    checkpoint write left (`.step-*.tmp`) is removed."""
    for name, reason in saved.get("damaged", []):
        path = Path(name)
        kept = path.with_name(f"damaged-{path.name}")
        path.rename(kept)
        notice(f"{reason}; resuming from the older {Path(saved['file']).name} instead; the damaged file is kept as {kept}")
    for note in saved.get("notes", []):
        notice(note)
    for stale in (folder / "checkpoints").glob(".step-*.tmp"):
        stale.unlink(missing_ok=True)


@contextmanager
def restoring(path: str | Path) -> Iterator[None]:
    """Put a checkpoint back; what a readable but damaged one raises on the way (a missing key, a
    tensor of the wrong shape) becomes one line naming the file. No file is changed before this."""
    try:
        yield
    except FastDQNError:
        raise
    except (KeyError, IndexError, TypeError, ValueError, RuntimeError, AttributeError) as error:
        # torch's shape message spans lines (a heading, then the mismatch): joined into one
        reason = f"missing {error}" if isinstance(error, KeyError) else " ".join(str(error).split()) or type(error).__name__
        raise CheckpointError(
            f"{path} does not fit this run ({reason[:300]}); nothing was changed; move it out of checkpoints/ to resume from the one before it"
        ) from None


def latest_run_checkpoint(run_dir: Path) -> Path:
    """The newest resumable checkpoint of a run (its name only: nothing is read or changed)."""
    folder = run_dir / "checkpoints"
    if not run_dir.is_dir():
        raise CheckpointError(f"--resume {run_dir}: no such run folder")
    found = sorted(folder.glob("step-*.pt"))
    if not found:
        raise CheckpointError(f"--resume {run_dir}: the folder holds no checkpoint (checkpoints/step-*.pt); start a new run instead")
    return found[-1]
