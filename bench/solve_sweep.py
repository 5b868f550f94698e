"""Env steps to the first solve: variants x seeds of a preset, each run stopping at its first greedy 475.

    python bench/solve_sweep.py --preset cartpole-fast --seeds 1-10 --variant "num_envs=4 gradient_steps=4" --variant learning_starts=500
    python bench/solve_sweep.py --preset cartpole-fast --seeds 1-10 --singles --variant "num_envs=4 gradient_steps=4"

`bench/sweep.py` runs every run to its budget and scores the final policy; this one measures what
`bench/peers.py` does: the env step of the first greedy evaluation (20 episodes, every
`eval_every_steps`) whose mean reaches `stop_at_return`. Per variant (the preset alone when none is
given) it reports the solved count, the median and max env steps to solve (an unsolved run counts
as never solving), each seed's solve step, and the wall.

By default each variant's seeds train as one group in this process (`train_many`: cheap, and a
member's solve step follows its single run's in distribution, not seed for seed); `--singles` runs
each seed as its own `fastdqn train --quiet` process, as `bench/peers.py` runs fastdqn, and reports
the median whole-process wall (imports included). `--set total_steps=N` caps an unsolved run.
Writes bench/results/solve-sweep-<date>.md and .json.
"""

from __future__ import annotations

import argparse
import math
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # run as a script: make `bench` importable as a package

from bench.solve import fastdqn_command, first_solve  # noqa: E402
from bench.sweep import machine, parse_variant, write_results  # noqa: E402


def group_rows(preset: str, seeds: list[int], setting: dict[str, str], out_dir: Path) -> list[dict[str, Any]]:
    """One group of `seeds` with `setting` over the preset: each member's solve step and the group's wall per seed."""
    from fastdqn.cli_config import build_config
    from fastdqn.group import train_many

    base = build_config(preset, None, {**setting, "save_plot": False, "out_dir": str(out_dir)})
    cfgs = [base.replace(seed=seed) for seed in seeds]
    start = time.perf_counter()
    results = train_many(cfgs, progress=False, plot=False)
    wall = time.perf_counter() - start
    return [
        {"seed": cfg.seed, "solved_env_steps": result.solved_at_step, "env_steps": result.env_steps, "wall_s": wall / len(cfgs)}
        for cfg, result in zip(cfgs, results, strict=True)
    ]


def single_row(preset: str, seed: int, setting: dict[str, str], out_dir: Path) -> dict[str, Any]:
    """`fastdqn train --quiet --preset P --seed S --set ...` as one process, timed whole (imports included)."""
    options = [f"--{name.replace('_', '-')}={value}" for name, value in setting.items()]
    command = [*fastdqn_command(), "train", "--quiet", "--preset", preset, "--seed", str(seed), "--out", str(out_dir), *options]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"`{' '.join(command)}` exited {done.returncode}: {done.stderr.strip()[-600:]}")
    (metrics,) = sorted(out_dir.glob("*/metrics.csv"))
    env_steps, solve_s = first_solve(metrics)
    return {"seed": seed, "solved_env_steps": env_steps, "solved_in_run_s": solve_s, "wall_s": wall}


def summarize(label: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    steps = [math.inf if r["solved_env_steps"] is None else r["solved_env_steps"] for r in rows]
    return {
        "variant": label,
        "seeds": len(rows),
        "solved": sum(r["solved_env_steps"] is not None for r in rows),
        "median_steps": statistics.median(steps),
        "max_steps": max(steps),
        "median_wall_s": statistics.median(r["wall_s"] for r in rows),
        "median_solved_in_run_s": statistics.median(r.get("solved_in_run_s") or math.inf for r in rows),
        "per_seed": {r["seed"]: r["solved_env_steps"] for r in rows},
    }


def markdown(table: list[dict[str, Any]], singles: bool) -> list[str]:
    if singles:
        head = "median process wall (imports included) | median in-run wall to the solve"
    else:
        head = "group wall / seed"
    lines = [f"| variant | solved | median env steps to solve | max | {head} | solve step per seed |"]
    lines.append("|---|---|---|---|---|" + ("---|---|" if singles else "---|"))
    for e in table:
        per_seed = ", ".join("-" if s is None else f"{s / 1000:.1f}k" for s in e["per_seed"].values())
        wall = f"{e['median_wall_s']:.2f} s" + (f" | {e['median_solved_in_run_s']:.2f} s" if singles else "")
        lines.append(
            f"| {e['variant'] or '(preset)'} | {e['solved']}/{e['seeds']} | {e['median_steps']:,.0f} | {e['max_steps']:,.0f} | {wall} | {per_seed} |"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    from fastdqn.cli_config import parse_seeds

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="cartpole-fast", help="a preset name (`fastdqn presets`)")
    parser.add_argument("--seeds", default="1-10")
    parser.add_argument("--variant", action="append", default=[], help='"NAME=V NAME2=V2": one setting over the preset (repeatable)')
    parser.add_argument("--set", action="append", default=[], help="NAME=VALUE for every variant, e.g. total_steps=30000 (repeatable)")
    parser.add_argument("--singles", action="store_true", help="one `fastdqn train` process per seed, as bench/peers.py runs it")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args(argv)
    common = {name.replace("-", "_"): value for name, value in (item.split("=", 1) for item in args.set)}
    seeds = parse_seeds(args.seeds)
    variants = args.variant or [""]
    settings = [{**common, **(parse_variant(text) if text else {})} for text in variants]
    runs: dict[str, list[dict[str, Any]]] = {text: [] for text in variants}
    with tempfile.TemporaryDirectory(prefix="fastdqn-solve-sweep-") as tmp:
        if args.singles:  # seed 1 of every variant, then seed 2, ...: a slow minute on the machine falls on all alike
            for seed in seeds:
                for index, (text, setting) in enumerate(zip(variants, settings, strict=True)):
                    runs[text].append(row := single_row(args.preset, seed, setting, Path(tmp) / f"v{index}-s{seed}"))
                    print(f"{text or '(preset)'} seed {seed}: solved at {row['solved_env_steps']}, {row['wall_s']:.1f} s", flush=True)
        else:
            for index, (text, setting) in enumerate(zip(variants, settings, strict=True)):
                runs[text] = group_rows(args.preset, seeds, setting, Path(tmp) / f"v{index}")
                print("\n".join(markdown([summarize(text, runs[text])], False)[2:]), flush=True)
    table = [summarize(text, rows) for text, rows in runs.items()]
    lines = markdown(table, args.singles)
    header = f"`python bench/solve_sweep.py {shlex.join(sys.argv[1:] if argv is None else argv)}`"
    print("\n".join(lines))
    stem = "solve-sweep-" + datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    payload = {"argv": sys.argv[1:] if argv is None else argv, "machine": machine(), "table": table, "runs": runs}
    for path in write_results(stem, args.out, payload, [header, "", *lines]):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
