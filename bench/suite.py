"""`make bench-suite`: every classic preset at its budget over seeds 1-10, beside SB3 with rl-zoo's settings.

    python bench/suite.py [--quick] [--seeds 1-10] [--sb3-seeds 1-3] [--envs CartPole-v1,Acrobot-v1] [--out DIR]

fastdqn trains each env's preset (`fastdqn train --env ENV` picks it) to its budget with no early
stop, the seeds as one group in one process (bench/sweep.py); then `best.pt` (what `fastdqn eval`
picks) and `final.pt` each get 20 fresh greedy episodes. In the same run Stable-Baselines3's DQN
trains with rl-baselines3-zoo's hyperparameters for the env (the `rl_zoo3` package's dqn.yml, one
env as the zoo runs it) on the SB3 seeds, and its final policy gets the same 20 episodes. Both use
one torch thread. Walls are training walls (fastdqn's includes its in-training evaluations; imports
excluded on both sides). Writes bench/results/suite-<date>.md, .json and .png, after each env, so
a run cut short keeps what it finished. `--quick` is a smoke test: CartPole only, 2 seeds, 2k steps.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # run as a script: make `bench` importable as a package

from bench.stats import fmt, summary  # noqa: E402
from bench.sweep import EVAL_EPISODES, EVAL_SEED, SOLVE_LINES, aggregate, machine, run_grid, write_results  # noqa: E402

ENVS = {"CartPole-v1": "cartpole", "Acrobot-v1": "acrobot", "MountainCar-v0": "mountaincar", "LunarLander-v3": "lunarlander"}
ZOO_PUBLISHED = {"CartPole-v1": 500.0, "Acrobot-v1": -76.6, "MountainCar-v0": -100.8, "LunarLander-v3": 154.0}
"""rl-baselines3-zoo's published DQN results (benchmark.md; LunarLander's is v2's)."""
QUICK_STEPS = 2_000


def zoo_hyperparams(env_id: str) -> dict[str, Any]:
    """rl-zoo's DQN settings for `env_id` as SB3's DQN keywords, plus `n_timesteps`."""
    import rl_zoo3
    import yaml

    table = yaml.safe_load((Path(rl_zoo3.__file__).parent / "hyperparams" / "dqn.yml").read_text())
    params = dict(table[env_id])
    kwargs = params.pop("policy_kwargs", None)
    if isinstance(kwargs, str):  # the zoo writes "dict(net_arch=[256, 256])" and evaluates it itself
        params["policy_kwargs"] = eval(kwargs, {"__builtins__": {}}, {"dict": dict})
    for unused in ("env_wrapper", "frame_stack", "normalize", "n_envs"):
        params.pop(unused, None)
    return params


def _episodes(model: Any, env: Any) -> list[float]:
    """`EVAL_EPISODES` deterministic episodes of an SB3 model, env seeds EVAL_SEED + i (the same starts as fastdqn's evaluation)."""
    returns = []
    for episode in range(EVAL_EPISODES):
        obs, _ = env.reset(seed=EVAL_SEED + episode)
        total, done = 0.0, False
        while not done:
            action, _ = model.predict(obs, deterministic=True)
            obs, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    env.close()
    return returns


def sb3_run(env_id: str, seed: int, total_steps: int | None) -> dict[str, Any]:
    """SB3 DQN with the zoo's settings on one env: training wall and the final greedy evaluation."""
    import gymnasium as gym
    import torch
    from stable_baselines3 import DQN

    torch.set_num_threads(1)
    params = zoo_hyperparams(env_id)
    budget = int(total_steps or params.pop("n_timesteps"))
    params.pop("n_timesteps", None)
    policy = params.pop("policy")
    if total_steps is not None:  # --quick: learning must start inside the shortened budget
        params["learning_starts"] = min(int(params.get("learning_starts", 0)), budget // 4)
    model = DQN(policy, gym.make(env_id), seed=seed, device="cpu", verbose=0, **params)
    start = time.perf_counter()
    model.learn(total_timesteps=budget)
    wall = time.perf_counter() - start
    returns = _episodes(model, gym.make(env_id))
    return {"env_id": env_id, "seed": seed, "total_steps": budget, "wall_s": wall, "final_eval": sum(returns) / len(returns)}


def env_entry(env_id: str, fast: dict[str, Any], sb3: list[dict[str, Any]]) -> dict[str, Any]:
    entry = dict(fast)
    entry["zoo_published"] = ZOO_PUBLISHED[env_id]
    if sb3:
        entry["sb3_seeds"] = len(sb3)
        entry["sb3_final"] = summary([row["final_eval"] for row in sb3])
        entry["sb3_final_mean"] = statistics.mean(row["final_eval"] for row in sb3)
        entry["sb3_final_solved"] = sum(row["final_eval"] >= SOLVE_LINES[env_id] for row in sb3)
        entry["sb3_wall_median_s"] = statistics.median(row["wall_s"] for row in sb3)
        entry["wall_ratio"] = fast["wall_per_seed_s"] / entry["sb3_wall_median_s"]
        entry["group_vs_one_sb3_seed"] = fast["group_wall_s"] / entry["sb3_wall_median_s"]
    return entry


def markdown(entries: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| env (budget) | fastdqn final.pt IQM [95% CI] | fastdqn best.pt IQM [95% CI] | final solved | reached, then fell back "
        "| wall / seed | SB3 + zoo final (mean) | SB3 final solved | SB3 wall / seed (median) | fastdqn / SB3 wall | group / one SB3 seed | zoo published |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for e in entries:
        sb3 = ["-"] * 5
        if "sb3_seeds" in e:
            sb3 = [f"{e['sb3_final_mean']:.1f} ({e['sb3_seeds']} seeds)", f"{e['sb3_final_solved']}/{e['sb3_seeds']}"]
            sb3 += [f"{e['sb3_wall_median_s']:.1f} s", f"{e['wall_ratio']:.2f}x", f"{e['group_vs_one_sb3_seed']:.2f}x"]
        cells = [
            f"{e['env_id']} ({e['budget']:,})",
            fmt(e["final"]),
            fmt(e["best"]),
            f"{e['final_solved']}/{e['seeds']} (>= {e['solve_line']:g})",
        ]
        cells += [f"{e['fell_back']} of {e['reached']}", f"{e['wall_per_seed_s']:.1f} s", *sb3, f"{e['zoo_published']:g}"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def plot(entries: list[dict[str, Any]], rows: list[dict[str, Any]], sb3_rows: list[dict[str, Any]], path: Path) -> None:
    """Per env: each seed's best and final greedy return (fastdqn) and final (SB3) beside their IQM and interval, the solve line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(entries), figsize=(4 * len(entries), 3.6), squeeze=False)
    for ax, e in zip(axes[0], entries, strict=True):
        env_id = e["env_id"]
        groups = [
            ("fastdqn best.pt", [r["best_eval"] for r in rows if r["env_id"] == env_id]),
            ("fastdqn final.pt", [r["final_eval"] for r in rows if r["env_id"] == env_id]),
            ("SB3 + zoo final", [r["final_eval"] for r in sb3_rows if r["env_id"] == env_id]),
        ]
        for x, (label, values) in enumerate(groups):
            if not values:
                continue
            stats = summary(values)
            yerr = [[stats["iqm"] - stats["ci_low"]], [stats["ci_high"] - stats["iqm"]]]  # returns can be negative: no bars from 0
            ax.errorbar(
                x, stats["iqm"], yerr=yerr, color=("C0", "C1", "C2")[x], marker="s", markersize=9, capsize=6, label=f"{label} IQM, 95% CI"
            )
            ax.scatter([x + 0.15] * len(values), values, color="k", s=8, zorder=3)
        ax.axhline(e["solve_line"], color="r", linestyle="--", linewidth=1, label="solve line")
        ax.set_xticks(range(3), ["best", "final", "SB3"])
        ax.set_xlim(-0.5, 2.5)
        ax.set_title(f"{env_id} ({e['budget']:,} steps)", fontsize=10)
    axes[0][0].set_ylabel(f"greedy return ({EVAL_EPISODES} episodes)")
    axes[0][0].legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    from fastdqn.cli_config import parse_seeds

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke test: CartPole-v1, seeds 1-2, SB3 seed 1, 2k env steps")
    parser.add_argument("--seeds", default=None, help="fastdqn seeds [default: 1-10]")
    parser.add_argument("--sb3-seeds", default=None, help="SB3 seeds [default: 1-3]; 'none' skips SB3")
    parser.add_argument("--envs", default=None, help=f"comma-separated [default: {','.join(ENVS)}]")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args(argv)
    envs = (args.envs or ("CartPole-v1" if args.quick else ",".join(ENVS))).split(",")
    seeds = parse_seeds(args.seeds or ("1-2" if args.quick else "1-10"))
    sb3_text = args.sb3_seeds or ("1" if args.quick else "1-3")
    sb3_seeds = [] if sb3_text == "none" else parse_seeds(sb3_text)
    overrides = {"total_steps": str(QUICK_STEPS), "learning_starts": "500", "eval_every_steps": "1000"} if args.quick else {}
    stem = "suite-" + ("quick-" if args.quick else "") + datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    import torch

    torch.set_num_threads(1)  # both sides train on one thread (the presets' torch_threads, sb3_run's setting): record that
    info = machine()
    rows: list[dict[str, Any]] = []
    sb3_rows: list[dict[str, Any]] = []
    entries: list[dict[str, Any]] = []

    def save() -> tuple[Path, Path]:
        lines = [
            *markdown(entries),
            "",
            "SB3 side: " + ", ".join(f"{k} {v}" for k, v in _versions().items()) + "; torch threads 1 on both sides",
        ]
        payload = {
            "argv": sys.argv[1:],
            "machine": info,
            "seeds": seeds,
            "sb3_seeds": sb3_seeds,
            "table": entries,
            "runs": rows,
            "sb3_runs": sb3_rows,
            "versions": _versions(),
        }
        paths = write_results(stem, args.out, payload, lines)
        plot(entries, rows, sb3_rows, args.out / f"{stem}.png")
        print("\n".join(lines), flush=True)
        return paths

    for env_id in envs:
        preset = ENVS[env_id]
        with tempfile.TemporaryDirectory(prefix="fastdqn-suite-") as tmp:
            env_rows = run_grid(preset, seeds, None, [], overrides, Path(tmp))
        rows += env_rows
        fast = aggregate(env_rows)[0]
        fast["budget"] = QUICK_STEPS if args.quick else _budget(preset)
        fast["group_wall_s"] = env_rows[0]["group_wall_s"]
        fast["load_average"] = machine()["load average"]  # the machine is shared: the load each side trained under
        entries.append(env_entry(env_id, fast, []))
        json_path, md_path = save()  # a run cut short during SB3 keeps fastdqn's side of this env
        env_sb3: list[dict[str, Any]] = []
        for seed in sb3_seeds:
            env_sb3.append(sb3_run(env_id, seed, QUICK_STEPS if args.quick else None))
            env_sb3[-1]["load_average"] = machine()["load average"]
            sb3_rows.append(env_sb3[-1])
            entries[-1] = env_entry(env_id, fast, env_sb3)
            json_path, md_path = save()
    print(f"wrote {json_path}, {md_path} and {args.out / (stem + '.png')}")
    return 0


def _budget(preset: str) -> int:
    from fastdqn.config import preset as load

    return load(preset).total_steps


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("stable-baselines3", "rl_zoo3", "box2d", "torch", "gymnasium"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


if __name__ == "__main__":
    raise SystemExit(main())
