"""The run-folder lock: one live process writes a run folder at a time.

`fastdqn.lock` in the folder holds the pid, host and start time of the process writing it. It is
created atomically (O_CREAT | O_EXCL); a second process finds it and is refused with the holder's
pid while that process lives. A lock whose process is gone (kill -9, a power cut; its pid no
longer runs on this host, or runs another program) is taken over in place, one taker at a time.
A lock from another host cannot be checked, so only a person can clear it.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from fastdqn.config import FastDQNError

LOCK_NAME = "fastdqn.lock"
"""The lock file inside a run or group folder, present while a process writes the folder."""


class RunFolderBusy(FastDQNError):
    """Another live process holds the run folder's lock."""

    exit_code = 3


def _process_start(pid: int) -> str | None:
    """When `pid` started, in clock ticks since boot (Linux), so that a reused pid is not taken for the holder."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rpartition(")")[2].split()[19]  # field 22 of stat; the name in parentheses may hold spaces


def alive(holder: dict[str, Any]) -> bool:
    """True unless the holder is known to be gone: a pid on this host that no longer runs (or runs another program)."""
    if holder.get("host") != socket.gethostname():
        return True  # another machine's process cannot be asked; only a person can say it is gone
    pid = holder.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it runs, under another user
    started = holder.get("pid_started")
    now = _process_start(pid)
    return started is None or now is None or started == now


def read_lock(path: Path) -> dict[str, Any] | None:
    try:
        holder = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return holder if isinstance(holder, dict) else None


@dataclass
class RunLock:
    """A held lock: `release()` removes the file if it is still this holder's."""

    path: Path
    token: str

    def release(self) -> None:
        holder = read_lock(self.path)
        if holder is not None and holder.get("token") == self.token:
            self.path.unlink(missing_ok=True)


def busy(folder: Path, path: Path, holder: dict[str, Any] | None) -> RunFolderBusy:
    if holder is None:
        return RunFolderBusy(f"{folder} is being locked by another process right now ({path} is not written yet); try again in a moment")
    pid, host, since = holder.get("pid"), holder.get("host"), holder.get("started", "?")
    where = "" if host == socket.gethostname() else f" on host {host}"
    stop = f"stop it (kill {pid})" if not where else f"if that process is gone, delete {path}"
    return RunFolderBusy(f"{folder} is in use by process {pid}{where} (since {since}); wait for it to end or {stop}, then try again")


@contextlib.contextmanager
def _serialized(path: Path) -> Iterator[None]:
    """Hold an advisory lock on the lock file while its holder is judged and replaced (POSIX; elsewhere a no-op)."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing drops the flock


def acquire(folder: Path) -> RunLock:
    """Take `folder`'s lock: created atomically (O_CREAT | O_EXCL), or taken over from a holder that died.

    Raises RunFolderBusy naming the holder's pid when a live process holds it.
    """
    path = folder / LOCK_NAME
    token = secrets.token_hex(8)
    mine = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "pid_started": _process_start(os.getpid()),
        "token": token,
    }
    text = json.dumps(mine)
    for _ in range(5):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as lock_file:
                lock_file.write(text)
            return RunLock(path, token)
        try:
            with _serialized(path):  # two processes taking over one stale lock: one at a time
                holder = read_lock(path)
                if holder is None and time.time() - path.stat().st_mtime < 10:
                    raise busy(folder, path, None)  # just created, its content on the way
                if holder is not None and alive(holder):
                    raise busy(folder, path, holder)
                # the holder died: the lock becomes this process's, in place, so no one else can slip in
                with open(path, "r+") as lock_file:
                    lock_file.truncate(0)
                    lock_file.write(text)
                return RunLock(path, token)
        except FileNotFoundError:
            continue  # released meanwhile: create it anew
    raise busy(folder, path, read_lock(path))
