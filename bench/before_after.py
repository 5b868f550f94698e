"""The same `fastdqn train` workloads from two checkouts, alternated round by round: after / before.

    python bench/before_after.py --before REV [--after PATH] [--seeds 1-5] [--rounds 3] [--out DIR]

Why: an engine change must not slow a run down, and on a machine whose speed drifts by 2x from hour
to hour only figures measured side by side compare. `--before` is a git revision, checked out into a
temporary worktree; `--after` is a checkout (default: this one). Each workload runs once per side per
round, the sides alternating (before first on odd rounds, after first on even ones), each as a whole
`fastdqn train` process timed from start to exit with `PYTHONPATH` pointing at its checkout:

- `solve`: the cartpole-fast preset to its first greedy mean >= 475, seed by seed: process wall and
  env steps to solve (fastdqn's own figure; the same on both sides when the trajectory is unchanged);
- `collect`: 30,000 env steps of the cartpole-fast preset, updates only from the last step on, no evaluation;
- `update`: 20,000 env steps of the cartpole-fast preset with its updates and no evaluation;
- `group`: the `solve` workload for all seeds as one group (`--seeds`), process wall.

Writes `DIR/before-after-<date>.md` with per-workload medians and the ratio after / before (< 1 is
faster), with machine, threads and versions beside them.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.solve import first_solve

ROOT = Path(__file__).resolve().parents[1]
QUIET = ("--quiet", "--no-save-plot", "--preset", "cartpole-fast")
WORKLOADS: dict[str, tuple[str, ...]] = {
    "collect": ("--total-steps", "30000", "--learning-starts", "29990", "--eval-every-steps", "0", "--stop-at-return", "none"),
    "update": ("--total-steps", "20000", "--eval-every-steps", "0", "--stop-at-return", "none"),
}


def train(tree: Path, out: Path, args: tuple[str, ...], timeout: float = 600) -> tuple[float, list[Path]]:
    """Process wall of `fastdqn train` from checkout `tree`, and the metrics.csv files it wrote."""
    command = [sys.executable, "-c", "from fastdqn.cli import main; main()", "train", *QUIET, "--out", str(out), *args]
    start = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": str(tree)}  # the checkout's package, ahead of any installed fastdqn
    # cwd: `python -c` puts the working folder first on sys.path, ahead of PYTHONPATH
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env, cwd=tree)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{tree}: fastdqn train {' '.join(args)} exited {done.returncode}: {done.stderr.strip()[-600:]}")
    return wall, sorted(out.rglob("metrics.csv"))


def one_round(trees: dict[str, Path], seeds: list[int], scratch: Path, order: list[str], only: set[str]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for seed in seeds if "solve" in only else []:
        for side in order:
            wall, metrics = train(trees[side], scratch / f"{side}-solve-{seed}-{time.monotonic_ns()}", ("--seed", str(seed)))
            steps, _ = first_solve(metrics[0])
            rows.append({"workload": "solve", "side": side, "seed": seed, "wall_s": wall, "env_steps": steps})
    for name, args in WORKLOADS.items():
        for side in order if name in only else []:
            wall, _ = train(trees[side], scratch / f"{side}-{name}-{time.monotonic_ns()}", ("--seed", str(seeds[0]), *args))
            rows.append({"workload": name, "side": side, "seed": seeds[0], "wall_s": wall, "env_steps": None})
    group = (
        ("--seeds", f"{seeds[0]}-{seeds[-1]}") if seeds == list(range(seeds[0], seeds[-1] + 1)) else ("--seeds", ",".join(map(str, seeds)))
    )
    for side in order if "group" in only else []:
        wall, _ = train(trees[side], scratch / f"{side}-group-{time.monotonic_ns()}", group)
        rows.append({"workload": "group", "side": side, "seed": None, "wall_s": wall, "env_steps": None})
    return rows


def versions() -> str:
    import gymnasium
    import numpy
    import torch

    from fastdqn.sysinfo import cpu_model

    cpu = cpu_model()
    return (
        f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, torch {torch.__version__} "
        f"(fastdqn's default of 1 intra-op thread), gymnasium {gymnasium.__version__}, numpy {numpy.__version__}"
    )


def report(rows: list[dict[str, Any]], before: str, after: str, rounds: int) -> str:
    lines = [
        f"# before / after, {time.strftime('%Y-%m-%d %H:%M')}",
        "",
        f"before: `{before}`; after: `{after}`; {rounds} rounds alternating sides; {versions()}; "
        f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} at the end.",
        "",
        "| workload | before median s | after median s | after / before | env steps to solve, before / after |",
        "|---|---|---|---|---|",
    ]
    for name in ("solve", "collect", "update", "group"):
        walls = {side: [r["wall_s"] for r in rows if r["workload"] == name and r["side"] == side] for side in ("before", "after")}
        if not walls["before"] or not walls["after"]:
            continue
        b, a = statistics.median(walls["before"]), statistics.median(walls["after"])
        steps = ""
        if name == "solve":
            solved = {
                side: [r["env_steps"] for r in rows if r["workload"] == name and r["side"] == side and r["env_steps"]] for side in walls
            }
            steps = " / ".join(f"{statistics.median(v):,.0f}" if v else "-" for v in solved.values())
        lines.append(f"| {name} | {b:.2f} | {a:.2f} | {a / b:.3f} | {steps} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", required=True, help="git revision of the checkout to compare against")
    parser.add_argument("--after", type=Path, default=ROOT, help="checkout to measure (default: this one)")
    parser.add_argument("--seeds", default="1-5", help="seeds of the solve and group workloads, e.g. 1-5")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--only", default="solve,collect,update,group", help="workloads to run, comma-separated")
    args = parser.parse_args()
    first, _, last = args.seeds.partition("-")
    seeds = list(range(int(first), int(last or first) + 1))
    with tempfile.TemporaryDirectory(prefix="fastdqn-before-after-") as scratch_name:
        scratch = Path(scratch_name)
        before_tree = scratch / "before"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "--quiet", str(before_tree), args.before], check=True)
        try:
            trees = {"before": before_tree, "after": args.after.resolve()}
            rows: list[dict[str, Any]] = []
            for index in range(args.rounds):
                order = ["before", "after"] if index % 2 == 0 else ["after", "before"]
                rows += one_round(trees, seeds, scratch / f"round{index}", order, set(args.only.split(",")))
                print(report(rows, args.before, str(args.after), index + 1), flush=True)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(before_tree)], check=False)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"before-after-{time.strftime('%Y%m%d-%H%M')}.md"
    path.write_text(report(rows, args.before, str(args.after), args.rounds))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
