"""Time to solve CartPole-v1: fastdqn against three peers in one run, interleaved by seed.

    python bench/peers.py [--seeds 10] [--peer-seeds 3] [--cleanrl-python P --cleanrl CHECKOUT] [--tianshou-python P] [--no-sb3]

Every run is one whole process timed from start to exit (imports included), solved at its first
greedy evaluation whose mean over 20 episodes reaches 475, checked every 1,000 env steps:

- fastdqn: `fastdqn train --preset cartpole-fast` (bench/solve.py), seeds 1..`--seeds`;
- SB3 with rl-zoo's CartPole-v1 hyperparameters (bench/sb3_solve.py, this venv), seeds 1..`--peer-seeds`;
- CleanRL's `dqn.py` with its defaults (bench/cleanrl_solve.py, in its own venv: it pins Gymnasium 0.29);
- Tianshou's CartPole DQN example (bench/tianshou_solve.py, in a venv with tianshou 2.x).

Seeds run in turn (seed 1 of every tool, then seed 2, ...), so a slow hour on the machine falls on
every tool alike. A peer whose venv is not given is left out and said so. Writes
`bench/results/peers-<date>.md` (per-tool median wall and env steps to solve, solved counts, and
issue 19's two ratios: fastdqn's median wall over the lowest peer median, and its median env steps
over the best peer's) and the raw rows as JSON. `bench/peers.md` says how to make the peers' venvs.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.sb3_solve import sb3_missing_reason, sb3_solve_run  # noqa: E402
from bench.solve import first_solve, solve_run  # noqa: E402

EVAL_EVERY = 1_000
PEER_CAP = 200_000
"""Env steps an SB3 seed may run past the zoo's 5e4 budget before it counts as unsolved."""


def peer_run(python: str, script: str, seed: int, out: Path, extra: list[str], timeout: float = 1_800) -> dict[str, Any]:
    """One peer process for one seed: its wall (imports included) and its first solve from metrics.csv."""
    command = [python, str(ROOT / "bench" / script), "--seed", str(seed), "--out", str(out), "--eval-every-steps", str(EVAL_EVERY), *extra]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"`{' '.join(command)}` exited {done.returncode}: {done.stderr.strip()[-600:]}")
    env_steps, _ = first_solve(out / "metrics.csv")
    return {"seed": seed, "process_wall_s": wall, "solved_env_steps": env_steps}


def median_or_inf(values: list[float | None]) -> float:
    """Median with an unsolved run counted as never solving (so most unsolved gives inf)."""
    return statistics.median([math.inf if v is None else v for v in values]) if values else math.nan


def report(rows: dict[str, list[dict[str, Any]]], left_out: dict[str, str]) -> str:
    from bench.before_after import versions

    lines = [
        f"# Time to solve CartPole-v1, {time.strftime('%Y-%m-%d %H:%M')}",
        "",
        f"{versions()}; load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} at the end. "
        "Whole process per run (imports included), greedy mean of 20 episodes >= 475 checked every 1,000 env steps, "
        "seeds interleaved.",
        "",
        "| tool | seeds | solved | median process wall s | median env steps to solve | walls s |",
        "|---|---|---|---|---|---|",
    ]
    medians: dict[str, tuple[float, float]] = {}
    for tool, runs in rows.items():
        walls = [r["process_wall_s"] if r["solved_env_steps"] is not None else None for r in runs]
        steps = [r["solved_env_steps"] for r in runs]
        medians[tool] = (median_or_inf(walls), median_or_inf(steps))
        solved = sum(s is not None for s in steps)
        listed = ", ".join(f"{r['process_wall_s']:.1f}" + ("" if r["solved_env_steps"] else " (unsolved)") for r in runs)
        lines.append(f"| {tool} | {len(runs)} | {solved} | {medians[tool][0]:.2f} | {medians[tool][1]:,.0f} | {listed} |")
    peers = {tool: m for tool, m in medians.items() if tool != "fastdqn"}
    if "fastdqn" in medians and peers:
        wall, steps = medians["fastdqn"]
        lowest_wall = min(m[0] for m in peers.values())
        fewest_steps = min(m[1] for m in peers.values())
        lines += [
            "",
            f"- fastdqn median wall / lowest peer median: **{wall / lowest_wall:.3f}x** (issue 19's target: <= 0.03x)",
            f"- fastdqn median env steps / best peer's median: **{steps / fewest_steps:.3f}x** (target: <= 0.2x)",
        ]
    for tool, why in left_out.items():
        lines.append(f"- {tool} left out: {why}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=10, help="fastdqn seeds 1..N")
    parser.add_argument("--peer-seeds", type=int, default=3, help="each peer's seeds 1..N")
    parser.add_argument("--cleanrl-python", default=None, help="interpreter of a venv with CleanRL's dependencies (bench/peers.md)")
    parser.add_argument("--cleanrl", type=Path, default=None, help="a checkout of the CleanRL repository")
    parser.add_argument("--tianshou-python", default=None, help="interpreter of a venv with tianshou 2.x")
    parser.add_argument("--no-sb3", action="store_true", help="leave SB3 out (with no other peer given: fastdqn alone)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    left_out: dict[str, str] = {}
    tools = ["fastdqn"]
    if args.no_sb3:
        left_out["SB3 + rl-zoo"] = "--no-sb3 given"
    elif (why := sb3_missing_reason()) is None:
        tools.append("SB3 + rl-zoo")
    else:
        left_out["SB3 + rl-zoo"] = why
    if args.cleanrl_python and args.cleanrl:
        tools.append("CleanRL dqn.py")
    else:
        left_out["CleanRL dqn.py"] = "no --cleanrl-python / --cleanrl given"
    if args.tianshou_python:
        tools.append("Tianshou example")
    else:
        left_out["Tianshou example"] = "no --tianshou-python given"
    rows: dict[str, list[dict[str, Any]]] = {tool: [] for tool in tools}
    with tempfile.TemporaryDirectory(prefix="fastdqn-peers-") as scratch_name:
        scratch = Path(scratch_name)
        for seed in range(1, max(args.seeds, args.peer_seeds) + 1):
            for tool in tools:
                if seed > (args.seeds if tool == "fastdqn" else args.peer_seeds):
                    continue
                out = scratch / f"{tool.split()[0]}-{seed}"
                if tool == "fastdqn":
                    run = solve_run(seed, out, ("--eval-every-steps", str(EVAL_EVERY)))
                elif tool == "SB3 + rl-zoo":
                    run = sb3_solve_run(seed, out, eval_every_steps=EVAL_EVERY, max_steps=PEER_CAP)
                elif tool == "CleanRL dqn.py":
                    run = peer_run(args.cleanrl_python, "cleanrl_solve.py", seed, out, ["--cleanrl", str(args.cleanrl)])
                else:
                    run = peer_run(args.tianshou_python, "tianshou_solve.py", seed, out, [])
                rows[tool].append(run)
                print(f"{tool} seed {seed}: {run['process_wall_s']:.1f} s, solved at {run['solved_env_steps']}", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"peers-{time.strftime('%Y%m%d-%H%M')}"
    text = report(rows, left_out)
    stem.with_suffix(".md").write_text(text)
    stem.with_suffix(".json").write_text(json.dumps(rows, indent=1))
    print(text)
    print(f"wrote {stem}.md and .json")


if __name__ == "__main__":
    main()
