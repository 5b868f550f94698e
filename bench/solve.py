"""Time to solve CartPole-v1 with the speed tune (`--preset cartpole-fast`): `fastdqn train` as a user runs it, one process per seed."""

from __future__ import annotations

import csv
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.peer_protocol import SOLVED_RETURN


def fastdqn_command() -> list[str]:
    """The `fastdqn` script next to this interpreter (the venv's), else the same app through `-c`."""
    script = Path(sys.executable).parent / "fastdqn"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from fastdqn.cli import main; main()"]


def first_solve(metrics_csv: Path) -> tuple[int | None, float | None]:
    """(env steps, wall seconds in the run) of the first metric row whose greedy eval mean >= 475."""
    with metrics_csv.open(newline="") as f:
        for row in csv.DictReader(f):
            if row["eval_return_mean"] and float(row["eval_return_mean"]) >= SOLVED_RETURN:
                return int(row["env_steps"]), float(row["wall_s"])
    return None, None


def solve_run(seed: int, out_dir: Path, extra_args: tuple[str, ...] = (), timeout: float = 240) -> dict[str, Any]:
    """Run `fastdqn train --quiet --preset cartpole-fast --seed S --out <out_dir>` and time the whole process (imports included)."""
    command = [*fastdqn_command(), "train", "--quiet", "--preset", "cartpole-fast", "--seed", str(seed), "--out", str(out_dir), *extra_args]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"`{' '.join(command)}` exited {done.returncode}: {done.stderr.strip()[-600:]}")
    runs = sorted(out_dir.glob("*/metrics.csv"))
    if len(runs) != 1:
        raise RuntimeError(f"expected one run folder under {out_dir}, found {len(runs)}")
    env_steps, solve_s = first_solve(runs[0])
    return {"seed": seed, "process_wall_s": wall, "solved_env_steps": env_steps, "solved_in_run_s": solve_s}
