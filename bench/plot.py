"""Env steps/s against num_envs, cpu and cuda, from a `bench/results/*.json` file.

    python bench/plot.py bench/results/<host>-<date>.json [-o out.png]

One line per (device, workload): collection without updates and `fastdqn.train` at each replay
ratio; the tutorial loop (one env) is drawn as a marker at num_envs = 1.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

WORKLOADS = {
    ("bench_collect", None): "collect, no updates",
    ("bench_train_e2e", "tutorial"): "train, 1 update of 64 per env step",
    ("bench_train_e2e", "1per16"): "train, 1 update of 128 per 16 env steps",
}


def series(results: dict[str, Any]) -> dict[tuple[str, str, str], dict[int, float]]:
    """(device, workload label, impl) -> {num_envs: median steady env steps/s}."""
    out: dict[tuple[str, str, str], dict[int, float]] = defaultdict(dict)
    for bench in results.get("benchmarks", []):
        name = bench["name"].split("[")[0]
        params = bench["params"] or {}
        label = WORKLOADS.get((name, params.get("ratio")))
        per_round = [float(r["sps"]) for r in bench["extra_info"].get("rounds", [])]
        if label is None or not per_round:
            continue
        key = (str(params.get("device", "cpu")), label, str(params.get("impl", "fastdqn")))
        out[key][int(params["num_envs"])] = statistics.median(per_round)
    return out


def plot_sps(results_path: Path, out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")  # files only
    import matplotlib.pyplot as plt

    results = json.loads(results_path.read_text())
    lines = series(results)
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    colours = dict(zip(WORKLOADS.values(), ("tab:green", "tab:blue", "tab:orange"), strict=True))
    devices = sorted({device for device, _, _ in lines})
    for (device, label, impl), points in sorted(lines.items()):
        xs = sorted(points)
        style = "-" if device == "cpu" else "--"
        if impl == "baseline":
            ax.plot(
                xs,
                [points[x] for x in xs],
                "x",
                color=colours[label],
                markersize=10,
                mew=2,
                label=f"tutorial loop, {label.split(', ', 1)[1]} ({device})",
            )
        else:
            ax.plot(xs, [points[x] for x in xs], style + "o", color=colours[label], label=f"fastdqn {label} ({device})")
    ax.set_xscale("log", base=2)
    ticks = sorted({n for points in lines.values() for n in points})
    ax.set_xticks(ticks, [str(n) for n in ticks])
    ax.set_yscale("log")
    ax.set_xlabel("num_envs")
    ax.set_ylabel("env steps / s (median of rounds)")
    system = results.get("fastdqn", {}).get("system", {})
    cuda_note = "" if any(d.startswith("cuda") for d in devices) else "; cuda: not measured (no CUDA device)"
    ax.set_title(f"CartPole-v1, {system.get('cpu', '?')}, torch {system.get('torch', '?')}{cuda_note}", fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", type=Path)
    parser.add_argument("-o", "--out", type=Path, default=None, help="PNG path (default: next to the JSON)")
    args = parser.parse_args()
    print(plot_sps(args.results, args.out or args.results.with_suffix(".png")))


if __name__ == "__main__":
    main()
