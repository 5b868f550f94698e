"""The solve check every peer runner shares (bench/cleanrl_solve.py, bench/tianshou_solve.py), standard library only.

Each runner runs in its peer's own venv as a script, so it imports this file by name (`bench/` is
first on its `sys.path`), never fastdqn. The numbers are fastdqn's own: `train` stops at a greedy
mean of 475 over 20 episodes reset with `seed + 100000`; bench/solve.py and bench/sb3_solve.py import them from here too.
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

SOLVED_RETURN = 475.0
EVAL_EPISODES = 20
EVAL_SEED_OFFSET = 100_000
COLUMNS = ["env_steps", "wall_s", "eval_return_mean"]
"""fastdqn's metrics.csv columns that `bench.solve.first_solve` reads."""


def peer_parser(description: str) -> argparse.ArgumentParser:
    """The options every runner takes: `--seed`, `--out`, `--eval-every-steps`, `--threads`."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--eval-every-steps", type=int, default=1_000)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (fastdqn's default: 1)")
    return parser


class SolveLog:
    """`out/metrics.csv` in fastdqn's columns, one row per evaluation, flushed as written (a killed run keeps its rows)."""

    def __init__(self, out: Path, start: float):
        out.mkdir(parents=True, exist_ok=True)
        self.start = start
        self.file = (out / "metrics.csv").open("w", newline="")
        self.rows = csv.writer(self.file)
        self.rows.writerow(COLUMNS)

    def evaluated(self, env_steps: int, mean_return: float) -> bool:
        """Write the row of an evaluation at `env_steps`; True when it solves."""
        self.rows.writerow([env_steps, f"{time.perf_counter() - self.start:.3f}", f"{mean_return:.2f}"])
        self.file.flush()
        return mean_return >= SOLVED_RETURN

    def close(self) -> None:
        self.file.close()
