"""A sweep with the engine: seeds x a few values of one option, trained as groups in one process.

    python bench/sweep.py --preset acrobot --seeds 1-10 --option learning_rate=1e-3,5e-4 [--set total_steps=50000]
    python bench/sweep.py --preset lunarlander --seeds 1-5 --variant "tau=0.01 target_update_every=1" --variant learning_rate=5e-4

Every run goes to its preset's budget (no early stop). Afterwards each run's `best.pt` (the policy
`fastdqn eval RUN` picks) and `final.pt` (the one it ended with) get 20 fresh greedy episodes each
(seed 12345, as `fastdqn eval`) in Gymnasium's env, also for runs that trained on a native one, and
per value the table gives the IQM over seeds of both with a 95% bootstrap interval, how many final
policies reach the env's solve line, how many runs that reached it in training fell back below it
by their end, and the wall per seed. Values of an option
that changes tensor shapes (hidden_dim, batch_size, ...) train as one group each, the others as one
group for the whole grid. `--variant "A=1 B=2"` (repeatable) sweeps settings of several options
at once, each variant one row of the table. Writes bench/results/sweep-<date>.md and .json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # run as a script: make `bench` importable as a package

from bench.stats import fmt, summary  # noqa: E402

SOLVE_LINES = {"CartPole-v1": 475.0, "Acrobot-v1": -100.0, "MountainCar-v0": -110.0, "LunarLander-v3": 200.0}
"""The return each env counts as solved (Gymnasium's reward_threshold)."""
EVAL_EPISODES = 20
EVAL_SEED = 12345  # `fastdqn eval`'s default


def run_grid(
    preset: str,
    seeds: list[int],
    option: str | None,
    values: list[str],
    overrides: dict[str, str],
    out_dir: Path,
    variants: list[str] | None = None,
) -> list[dict[str, Any]]:
    """Train preset x values (or variants) x seeds to the budget as groups, evaluate best.pt and final.pt: one row per run."""

    from fastdqn.agent import DQNAgent
    from fastdqn.cli_config import build_config
    from fastdqn.cli_config import option_values as _option_values
    from fastdqn.evaluate import evaluate
    from fastdqn.group import SHAPE_FIELDS, train_many

    base = build_config(preset, None, {**overrides, "stop_at_return": "none", "save_plot": False, "out_dir": str(out_dir)})
    if variants:
        option = "variant"
        settings = [{n: _option_values(n, v)[0] for n, v in parse_variant(text).items()} for text in variants]
        labels: list[Any] = list(variants)
    else:
        settings = [{option: _option_values(option, value)[0]} for value in values] if option else [{}]
        labels = [None] * len(settings)
    shaped = any(name in SHAPE_FIELDS for setting in settings for name in setting)
    # one group per setting that changes tensor shapes; the whole grid as one group otherwise
    pairs = list(zip(settings, labels, strict=True))
    batches = [[pair] for pair in pairs] if shaped else [pairs]
    solve_line = SOLVE_LINES.get(base.env_id)
    rows: list[dict[str, Any]] = []
    for batch in batches:
        cfgs = [base.replace(seed=seed, **setting) for setting, _ in batch for seed in seeds]
        tags = [label for _, label in batch for _ in seeds]
        start = time.perf_counter()
        results = train_many(cfgs, progress=False, plot=False)
        wall = time.perf_counter() - start
        for cfg, tag, result in zip(cfgs, tags, results, strict=True):
            row: dict[str, Any] = {"env_id": cfg.env_id, "preset": preset, "option": option, "seed": cfg.seed}
            row["value"] = tag if option == "variant" else getattr(cfg, option) if option else None
            for policy in ("best", "final"):
                path = result.run_dir / f"{policy}.pt"
                returns = evaluate(
                    DQNAgent.load(path if path.exists() else result.run_dir / "final.pt", device="cpu"),
                    cfg.env_id,
                    EVAL_EPISODES,
                    EVAL_SEED,
                    backend="gymnasium",  # the reference env, as SB3's policies are evaluated, whatever the run trained on
                )
                row[f"{policy}_eval"] = sum(returns) / len(returns)
            history = [value for _, value in result.eval_history]
            row["best_in_training"] = max(history) if history else None
            row["last_in_training"] = history[-1] if history else None
            if solve_line is not None:
                row["solve_line"] = solve_line
                row["reached"] = any(value >= solve_line for value in history)
                row["final_solved"] = row["final_eval"] >= solve_line
            row["wall_per_seed_s"] = wall / len(cfgs)
            row["group_wall_s"] = wall
            row["group_size"] = len(cfgs)
            row["run_dir"] = str(result.run_dir)
            rows.append(row)
    return rows


def aggregate(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (env, value): IQM and CI of the best and final policies, solve and fall-back counts, wall per seed."""
    keys = list(dict.fromkeys((row["env_id"], row["value"]) for row in rows))
    table = []
    for env_id, value in keys:
        group = [row for row in rows if (row["env_id"], row["value"]) == (env_id, value)]
        entry: dict[str, Any] = {"env_id": env_id, "preset": group[0]["preset"], "option": group[0]["option"], "value": value}
        entry["seeds"] = len(group)
        entry["best"] = summary([row["best_eval"] for row in group])
        entry["final"] = summary([row["final_eval"] for row in group])
        if "solve_line" in group[0]:
            entry["solve_line"] = group[0]["solve_line"]
            entry["final_solved"] = sum(row["final_solved"] for row in group)
            entry["reached"] = sum(row["reached"] for row in group)
            entry["fell_back"] = sum(row["reached"] and not row["final_solved"] for row in group)
        entry["wall_per_seed_s"] = sum(row["wall_per_seed_s"] for row in group) / len(group)
        table.append(entry)
    return table


def markdown(table: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| env | preset | option = value | seeds | best.pt IQM [95% CI] | final.pt IQM [95% CI] | final solved | reached, then fell back | wall / seed |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for e in table:
        setting = f"{e['option']} = {e['value']}" if e["option"] else "(preset)"
        solved = f"{e['final_solved']}/{e['seeds']} (>= {e['solve_line']:g})" if "solve_line" in e else "-"
        fell = f"{e['fell_back']} of {e['reached']}" if "solve_line" in e else "-"
        lines.append(
            f"| {e['env_id']} | {e['preset']} | {setting} | {e['seeds']} | {fmt(e['best'])} | {fmt(e['final'])} | {solved} | {fell} | {e['wall_per_seed_s']:.1f} s |"
        )
    return lines


def machine() -> dict[str, Any]:
    import os

    from fastdqn.sysinfo import system_info

    info: dict[str, Any] = dict(system_info(import_torch=True))
    info["load average"] = " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    return info


def write_results(stem: str, out: Path, payload: dict[str, Any], lines: list[str]) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / f"{stem}.json", out / f"{stem}.md"
    json_path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    info = payload["machine"]
    notes = [f"machine: {info.get('cpu')}, {info.get('cpu cores')} cores; torch {info.get('torch')} ({info.get('torch threads')} threads)"]
    notes.append(
        f"versions: fastdqn {info.get('fastdqn')}, gymnasium {info.get('gymnasium')}, python {info.get('python')}; load {info.get('load average')}"
    )
    md_path.write_text("\n".join([*lines, "", *notes]) + "\n")
    return json_path, md_path


def parse_variant(text: str) -> dict[str, str]:
    """`"tau=0.01 target_update_every=1"` -> {"tau": "0.01", "target_update_every": "1"}."""
    pairs = [item.split("=", 1) for item in text.split()]
    if not pairs or any(len(pair) != 2 for pair in pairs):
        raise SystemExit(f"--variant {text!r}: write it as NAME=VALUE pairs separated by spaces")
    return {name.replace("-", "_"): value for name, value in pairs}


def parse_option(text: str | None) -> tuple[str | None, list[str]]:
    if not text:
        return None, []
    name, _, values = text.partition("=")
    return name.strip().replace("-", "_"), [v.strip() for v in values.split(",") if v.strip()]


def main(argv: list[str] | None = None) -> int:
    from fastdqn.cli_config import parse_seeds

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", required=True, help="a preset name (`fastdqn presets`)")
    parser.add_argument("--seeds", default="1-10")
    parser.add_argument("--option", default=None, help="NAME=V1,V2,...: a Config field and its values (none: the preset alone)")
    parser.add_argument(
        "--variant", action="append", default=[], help='"NAME=V NAME2=V2": one setting of several options (repeatable; not with --option)'
    )
    parser.add_argument("--set", action="append", default=[], help="NAME=VALUE over the preset, e.g. total_steps=20000 (repeatable)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--runs", type=Path, default=None, help="run folders (default: a temporary folder)")
    args = parser.parse_args(argv)
    option, values = parse_option(args.option)
    if option and args.variant:
        parser.error("give --option or --variant, not both")
    overrides = dict(item.split("=", 1) for item in args.set)
    import tempfile

    with tempfile.TemporaryDirectory(prefix="fastdqn-sweep-") as tmp:
        rows = run_grid(args.preset, parse_seeds(args.seeds), option, values, overrides, args.runs or Path(tmp), args.variant)
    table = aggregate(rows)
    lines = markdown(table)
    print("\n".join(lines))
    stem = "sweep-" + datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    payload = {"argv": sys.argv[1:], "machine": machine(), "table": table, "runs": rows}
    for path in write_results(stem, args.out, payload, lines):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
