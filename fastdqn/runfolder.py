"""Run folders are fastdqn's own: plain names, a lock per folder, and `--overwrite` only of a run.

A run name is one folder name inside `--out`, never a path, so no name reaches outside it and
`--overwrite` can only replace a folder that holds a fastdqn run (its `config.json`, or `group.json`
for a group). A lock file in the folder (runlock.py) names the process that writes it: a second
train, resume or overwrite of the same folder is refused while that process lives, and a lock left
by a process that died (kill -9, a power cut) is taken over.

The training entries (`train.train`, `group.train_many`, `actor_source.train_distributed`) run inside
`claims_run_folder`, which checks everything and takes the lock before anything is built or
deleted, turns the operating-system errors a user can cause into one line, and on every way out
releases the lock, and removes a folder it made when nothing but its config was written yet.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import inspect
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import ParamSpec, TypeVar

from fastdqn.config import Config, ConfigError, FastDQNError
from fastdqn.runlock import LOCK_NAME, RunLock, acquire, alive, busy, read_lock

RUN_MARKERS = ("config.json", "group.json")
"""A folder holding one of these is a fastdqn run (or group) that `--overwrite` may replace."""
CONFIG_ONLY = {*RUN_MARKERS, LOCK_NAME}
"""Files that mean nothing was trained yet: a folder holding only these is removed when its run fails."""
DEFAULT_NAME_MAX = 255


class FileSystemError(FastDQNError):
    """An operating-system error a user can cause or fix (disk full, read-only, permission, long name)."""

    exit_code = 74  # EX_IOERR (sysexits.h)


USER_ERRNOS = {
    errno.ENOSPC: "the disk is full; free some space",
    errno.EDQUOT: "the disk quota is used up; free some space",
    errno.EROFS: "the file system is read-only; pass --out a writable folder",
    errno.EACCES: "permission denied; pass --out a folder you can write (and run from one you can read)",
    errno.EPERM: "the operation is not permitted; pass --out a folder you own",
    errno.ENAMETOOLONG: "a path is too long for the file system; shorten --out or --run-name",
    errno.EMFILE: "too many open files; raise the limit (ulimit -n) or lower --num-envs",
    errno.ENOTDIR: "a file stands where the path needs a folder; pass --out a folder",
    errno.EEXIST: "a file stands where the path needs a folder; pass --out a folder",
}
"""The errno values a user causes (and can fix), with the fix; other OSErrors are bugs and keep their traceback."""


def name_max(folder: str | Path) -> int:
    """Longest file name, in bytes, the file system under `folder` (or its nearest existing parent) takes."""
    path = Path(folder).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        return int(os.pathconf(path, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):
        return DEFAULT_NAME_MAX  # no pathconf (Windows) or no answer: the common limit


def check_run_name(name: str, out_dir: str | Path, what: str = "run_name", limit: int | None = None) -> None:
    """Refuse, in one line with the fix, a run name that is not one plain folder name inside `out_dir`."""
    option = "--run-name" if what == "run_name" else "the varied options"
    if name == "":
        raise ConfigError(f"{what} is empty; pass {option} NAME (one folder name inside --out) or leave it out for a dated name")
    if name in (".", ".."):
        raise ConfigError(
            f"{what}={name!r} names --out itself or the folder above it, not a run folder of its own; pass {option} with a plain name such as my-run"
        )
    if "\0" in name:
        raise ConfigError(f"{what}={name!r} holds a NUL character; pass {option} with a plain name such as my-run")
    if os.path.isabs(name) or "/" in name or "\\" in name:
        raise ConfigError(
            f"{what}={name!r} is a path, not one folder name; put the folders in --out and the last name in {option} "
            f"(e.g. --out runs/cartpole --run-name my-run)"
        )
    length, limit = len(os.fsencode(name)), name_max(out_dir) if limit is None else limit
    if length > limit:
        raise ConfigError(
            f"{what} is {length} bytes long, more than the {limit} the file system takes for one name; pass a shorter {option}"
        )


def is_run_folder(folder: Path) -> bool:
    return any((folder / marker).is_file() for marker in RUN_MARKERS)


def _contents(folder: Path) -> list[Path]:
    return [entry for entry in folder.iterdir() if entry.name != LOCK_NAME]


def _check_replaceable(folder: Path, out_dir: Path) -> None:
    """`--overwrite` of `folder`: only a fastdqn run, never a link, `--out` itself or a folder above it."""
    if folder.is_symlink():
        raise ConfigError(
            f"{folder} is a symbolic link; --overwrite replaces only run folders fastdqn made, so remove the link or pick another --run-name"
        )
    real, out = folder.resolve(), out_dir.resolve()
    if real == out or real in out.parents:
        raise ConfigError(f"--overwrite would remove {real}, which holds --out {out_dir}; pass a --run-name for a folder inside --out")
    if not is_run_folder(folder):
        raise ConfigError(
            f"{folder} holds files but no fastdqn run (no config.json or group.json), so --overwrite leaves it alone; "
            f"pick another --run-name or --out"
        )


def _check_target(folder: Path, out_dir: Path, overwrite: bool) -> bool:
    """Before anything is built: may a new run go into `folder`? True when it exists (and must be locked)."""
    if folder.is_symlink() and overwrite:
        _check_replaceable(folder, out_dir)
    if not folder.exists():
        return False
    if not folder.is_dir():
        raise ConfigError(f"{folder} is a file, not a run folder; pick another --run-name")
    if _contents(folder):
        holder = read_lock(folder / LOCK_NAME)
        claim = _CLAIM.get()
        mine = claim is not None and folder.absolute() in claim.locks
        if holder is not None and not mine and alive(holder):
            raise busy(folder, folder / LOCK_NAME, holder)  # say who writes it, whatever was asked
        if not overwrite:
            raise ConfigError(
                f"{folder} already holds a run; continue it with --resume {folder}, replace it with --overwrite, or pick another --run-name"
            )
        _check_replaceable(folder, out_dir)
    return True


@dataclass
class _Claim:
    """What one training call holds: its locks and the folders it made."""

    locks: dict[Path, RunLock] = field(default_factory=dict)
    made: list[Path] = field(default_factory=list)
    existed: set[Path] = field(default_factory=set)
    """Folders in `made` that were there (empty) before: on failure they are emptied, not removed."""
    resume: Path | None = None

    def lock(self, folder: Path) -> None:
        key = folder.absolute()
        if key not in self.locks and key.parent not in self.locks:  # a group's lock covers its members' folders
            self.locks[key] = acquire(folder)

    def release(self) -> None:
        for held in reversed(self.locks.values()):
            held.release()
        self.locks.clear()

    def drop_unwritten(self) -> None:
        """Remove each folder this call made that holds nothing but config files: no one could resume it."""
        for folder in self.made:
            if not folder.is_dir() or not all(p.name in CONFIG_ONLY for p in folder.rglob("*") if not p.is_dir()):
                continue
            if folder not in self.existed:
                shutil.rmtree(folder, ignore_errors=True)
                continue
            for entry in _contents(folder):
                if entry.is_dir():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)

    def folders(self) -> list[Path]:
        return ([self.resume] if self.resume is not None else []) + self.made


_CLAIM: ContextVar[_Claim | None] = ContextVar("fastdqn_run_folder_claim", default=None)


def make_run_folder(cfg: Config, kind: str, overwrite: bool = False) -> Path:
    """`out_dir/<run_name>` (default `<env>-<kind>-<time>`), made empty and locked for this call.

    A folder that holds a run is refused unless `overwrite`, and then only a fastdqn run is emptied,
    under its lock, so a live writer's folder is never deleted.
    """
    name = cfg.run_name or f"{cfg.env_id.replace('/', '_').replace(':', '_')}-{kind}-{datetime.now():%Y%m%d-%H%M%S-%f}"
    out_dir = Path(cfg.out_dir)
    folder = out_dir / name
    claim = _CLAIM.get()
    if _check_target(folder, out_dir, overwrite) and claim is not None:
        claim.lock(folder)
    existed_empty = folder.is_dir() and not _contents(folder)
    leftovers = _contents(folder) if folder.is_dir() else []
    for entry in leftovers:  # only a checked, locked fastdqn run gets here with entries
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    if claim is not None:
        claim.lock(folder)
        claim.made.append(folder)
        if existed_empty:
            claim.existed.add(folder)
    return folder


def _resume_hint(claim: _Claim) -> str:
    for folder in claim.folders():
        if any((folder / "checkpoints").glob("step-*.pt")):
            return f"; the checkpoints already written are intact: continue with: fastdqn train --resume {folder}"
    return ""


def _shortened(path: str, keep: int = 80) -> str:
    """A path short enough for one line (a name too long for the file system may be thousands of characters)."""
    return path if len(path) <= 2 * keep else f"{path[:keep]}...{path[-keep:]} ({len(path):,} characters)"


def user_os_error(error: OSError, hint: str = "") -> FileSystemError | None:
    """One line for an OSError a user can cause (None for the others, which are bugs)."""
    if error.errno not in USER_ERRNOS:
        return None
    where = f": {_shortened(str(error.filename))}" if error.filename else ""
    name = errno.errorcode.get(error.errno or 0, "")
    return FileSystemError(f"{error.strerror or name} ({name}){where}; {USER_ERRNOS[error.errno]}{hint}")


@contextlib.contextmanager
def claim_run_folders(
    cfgs: Sequence[Config], resume: Path | None, overwrite: bool, member_names: Callable[[Sequence[Config]], list[str]] | None = None
) -> Iterator[None]:
    """Everything a training call checks before it builds: names, memory, the folder, and its lock."""
    from fastdqn.resources import check_memory

    if cfgs:
        check_memory(cfgs)  # first: a group too large to fit is refused before its K names are even made
        first = cfgs[0]
        if member_names is not None:
            limit = name_max(Path(first.out_dir))
            for name in member_names(cfgs):
                check_run_name(name, first.out_dir, what=f"member folder name {name!r}", limit=limit)
    claim = _Claim(resume=None if resume is None else Path(resume))
    token = _CLAIM.set(claim)
    try:
        try:
            if resume is not None:
                if is_run_folder(Path(resume)):  # anything else is refused by the resume itself, with no lock written into it
                    claim.lock(Path(resume))
            elif cfgs and cfgs[0].run_name is not None:
                folder = Path(cfgs[0].out_dir) / cfgs[0].run_name
                if _check_target(folder, Path(cfgs[0].out_dir), overwrite):
                    claim.lock(folder)
            yield
        except BaseException as error:
            claim.drop_unwritten()  # a folder holding only its config: no one could resume it, and it would block the name
            if isinstance(error, OSError):
                converted = user_os_error(error, _resume_hint(claim))
                if converted is not None:
                    raise converted from error
            if isinstance(error, MemoryError) or type(error).__name__ == "OutOfMemoryError":  # torch.cuda's is a RuntimeError
                from fastdqn.resources import ResourceError

                raise ResourceError(
                    f"out of memory ({type(error).__name__}) while building or training the run, beyond fastdqn's estimate "
                    f"(other processes may have taken memory since); lower --buffer-capacity, --num-envs or the number of seeds"
                    + _resume_hint(claim)
                ) from error
            raise
        finally:
            claim.release()
    except OSError as error:  # releasing or cleaning up can meet the same full or read-only disk
        converted = user_os_error(error, _resume_hint(claim))
        if converted is None:
            raise
        raise converted from error
    finally:
        _CLAIM.reset(token)


P = ParamSpec("P")
R = TypeVar("R")


def claims_run_folder(member_names: Callable[[Sequence[Config]], list[str]] | None = None) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a training entry whose first argument is a Config (or a list of them) and that takes
    `resume` and `overwrite`: it then runs inside `claim_run_folders`."""

    def wrap(entry: Callable[P, R]) -> Callable[P, R]:
        signature = inspect.signature(entry)

        @functools.wraps(entry)
        def claimed(*args: P.args, **kwargs: P.kwargs) -> R:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            first = next(iter(bound.arguments.values()))
            cfgs = [first] if isinstance(first, Config) else list(first)
            with claim_run_folders(cfgs, bound.arguments.get("resume"), bool(bound.arguments.get("overwrite")), member_names):
                return entry(*args, **kwargs)

        return claimed

    return wrap
