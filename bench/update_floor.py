"""The matmul floor under a preset's wall: the seconds per seed its updates need at this CPU's fp32 matmul peak.

    python bench/update_floor.py [--presets cartpole,acrobot,mountaincar,lunarlander] [--rounds 5] [--out DIR]

Per preset, in one run: the updates a run makes at its budget; the multiply-adds of one update (the
forwards on online(obs), target(next_obs) and, with Double DQN, online(next_obs), plus the backward's
weight and input gradients); the floor, which is those multiply-adds at the `torch.mm` rate measured
here at the preset's (batch, hidden) x (hidden, hidden) product; and fastdqn's measured eager update
(`DQNAgent.update` on a fixed random batch of the preset's shapes, no replay cost). Medians over
rounds, warm-up excluded, one torch thread as the suite runs.

Beside them, issue 19's wall targets from the newest `bench/results/suite-*.json` (`--suite FILE`):
a seed in <= 0.25x SB3's median wall, ten seeds as one group in <= 0.3x of one SB3 seed. A target
below the update floor (ten floors for the group) cannot be met on this machine at fp32 with the
preset's updates, whatever the rest of the loop costs. Writes bench/results/update-floor-<date>.md/.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # run as a script: make `bench` importable as a package

from bench.stats import median_seconds  # noqa: E402
from bench.sweep import machine, write_results  # noqa: E402
from fastdqn import Batch, Config, DQNAgent  # noqa: E402
from fastdqn.cli_config import build_config  # noqa: E402
from fastdqn.envs import EnvSpaces  # noqa: E402

SPACES = {"CartPole-v1": (4, 2), "Acrobot-v1": (6, 3), "MountainCar-v0": (2, 3), "LunarLander-v3": (8, 4)}
"""(obs_dim, n_actions) of the classic envs, so this needs no box2d."""


def updates_per_run(cfg: Config) -> int:
    """About the gradient steps of a run to its budget (the engine counts a vector step or two more at the start):
    `gradient_steps` every `train_every` vector steps once `learning_starts` env steps are in."""
    return (cfg.total_steps - cfg.learning_starts) // (cfg.num_envs * cfg.train_every) * cfg.gradient_steps


def update_macs(cfg: Config, obs_dim: int, n_actions: int) -> int:
    """Multiply-adds of one MLP update of batch B: each forward is B(DH + H^2 + HA); the backward forms every
    layer's weight gradient and the input gradients of the two upper layers."""
    b, d, h, a = cfg.batch_size, obs_dim, cfg.hidden_dim, n_actions
    forward = b * (d * h + h * h + a * h)
    backward = b * (d * h + 2 * h * h + 2 * a * h)
    return (3 if cfg.double_dqn else 2) * forward + backward


def sb3_walls(suite: Path | None) -> dict[str, float]:
    """env id -> SB3's median wall per seed in `suite` (default: the newest suite result), {} when there is none."""
    files = [suite] if suite is not None else sorted((ROOT / "bench" / "results").glob("suite-*.json"))
    if not files:
        return {}
    table = json.loads(files[-1].read_text())["table"]
    return {row["env_id"]: float(row["sb3_wall_median_s"]) for row in table if row.get("sb3_wall_median_s")}


def measure(preset: str, rounds: int) -> dict[str, Any]:
    cfg = build_config(preset, None, {"compile": "off", "device": "cpu"})
    obs_dim, n_actions = SPACES[cfg.env_id]
    b, h = cfg.batch_size, cfg.hidden_dim
    left, right, out = torch.randn(b, h), torch.randn(h, h), torch.empty(b, h)
    mm_s = median_seconds(lambda: torch.mm(left, right, out=out), repeats=rounds, inner=400, warmup=100)
    peak_flops = 2 * b * h * h / mm_s

    torch.manual_seed(0)
    agent = DQNAgent(cfg, EnvSpaces((obs_dim,), torch.float32, n_actions))
    g = torch.Generator().manual_seed(1)
    batch = Batch(
        torch.randn(b, obs_dim, generator=g),
        torch.randint(0, n_actions, (b,), generator=g),
        torch.randn(b, generator=g),
        torch.randn(b, obs_dim, generator=g),
        torch.rand(b, generator=g) < 0.02,
    )
    update_s = median_seconds(lambda: agent.update(batch), repeats=rounds, inner=200, warmup=50)
    updates, macs = updates_per_run(cfg), update_macs(cfg, obs_dim, n_actions)
    floor_s = 2 * macs / peak_flops
    return {
        "preset": preset,
        "env_id": cfg.env_id,
        "network": f"2x{h}, batch {b}",
        "updates_per_run": updates,
        "mflop_per_update": 2 * macs / 1e6,
        "mm_gflops": peak_flops / 1e9,
        "floor_us_per_update": floor_s * 1e6,
        "measured_us_per_update": update_s * 1e6,
        "measured_over_floor": update_s / floor_s,
        "floor_s_per_seed": floor_s * updates,
        "measured_update_s_per_seed": update_s * updates,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="cartpole,acrobot,mountaincar,lunarlander")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--suite", type=Path, default=None, help="the suite result whose SB3 walls set the targets")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    walls = sb3_walls(args.suite)
    rows = [measure(name, args.rounds) for name in args.presets.split(",")]
    lines = [
        "| preset | network | updates / run | MFLOP / update | mm GFLOP/s | floor us / update | measured us / update | measured / floor "
        "| update floor s / seed | measured updates s / seed | target s / seed (0.25x SB3) | 10-seed floor s | 10-seed target s (0.3x SB3) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        sb3 = walls.get(r["env_id"])
        r["target_s_per_seed"] = None if sb3 is None else 0.25 * sb3
        r["target_s_group_of_10"] = None if sb3 is None else 0.3 * sb3
        targets = (
            "| - | - | - |"
            if sb3 is None
            else f"| {r['target_s_per_seed']:.1f} | {10 * r['floor_s_per_seed']:.0f} | {r['target_s_group_of_10']:.1f} |"
        )
        lines.append(
            f"| {r['preset']} ({r['env_id']}) | {r['network']} | {r['updates_per_run']:,} | {r['mflop_per_update']:.1f} | {r['mm_gflops']:.0f} "
            f"| {r['floor_us_per_update']:.0f} | {r['measured_us_per_update']:.0f} | {r['measured_over_floor']:.2f}x "
            f"| {r['floor_s_per_seed']:.1f} | {r['measured_update_s_per_seed']:.1f} " + targets
        )
    stem = "update-floor-" + datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    _, md_path = write_results(stem, args.out, {"machine": machine(), "rows": rows}, lines)
    print(md_path.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
