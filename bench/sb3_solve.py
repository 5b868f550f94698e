"""Time to solve CartPole-v1 with Stable-Baselines3's DQN and rl-zoo's tuned hyperparameters, one process per seed.

    python bench/sb3_solve.py --seed S --out DIR [--eval-every-steps N] [--max-steps N] [--threads N]

The process trains `stable_baselines3.DQN` with the `CartPole-v1` entry of rl-baselines3-zoo's
`hyperparams/dqn.yml` (below) on one env, as `python -m rl_zoo3.train --algo dqn --env CartPole-v1`
does, and stops it at the first greedy evaluation whose mean over 20 episodes reaches 475: the
criterion of `fastdqn train`, checked every `eval_every_steps` env steps (the cartpole preset's
interval by default) on 20 envs reset with seed `S + 100000`, as fastdqn's `Evaluator` does. It
writes `DIR/metrics.csv` in fastdqn's columns (`env_steps`, `wall_s` since the process started,
`eval_return_mean`), so `bench.solve.first_solve` reads both. The parent (`sb3_solve_run`) times
the whole process, interpreter start-up and imports included, as `bench.solve.solve_run` times
`fastdqn train`. A seed that has not solved at the zoo's budget (5e4 env steps) stops there;
`--max-steps` stops it earlier (the tests' tiny run) or lets it go on (the peers' time to solve),
without changing the exploration schedule's length in env steps.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # run as a script (its own process, below): make `bench` importable as a package

from bench.peer_protocol import EVAL_EPISODES, EVAL_SEED_OFFSET, SOLVED_RETURN  # noqa: E402  (fastdqn's solve check)

ZOO_CARTPOLE: dict[str, Any] = {
    "policy": "MlpPolicy",
    "learning_rate": 2.3e-3,
    "batch_size": 64,
    "buffer_size": 100_000,
    "learning_starts": 1_000,
    "gamma": 0.99,
    "target_update_interval": 10,
    "train_freq": 256,
    "gradient_steps": 128,
    "exploration_fraction": 0.16,
    "exploration_final_eps": 0.04,
    "policy_kwargs": {"net_arch": [256, 256]},
}
"""rl-baselines3-zoo `hyperparams/dqn.yml`, `CartPole-v1` ("Almost Tuned"), without `n_timesteps`."""
ZOO_N_TIMESTEPS = 50_000
"""The zoo's budget for that entry; `exploration_fraction` is a fraction of it."""


def sb3_missing_reason() -> str | None:
    """Why the SB3 case cannot run here, or None when it can."""
    if importlib.util.find_spec("stable_baselines3") is None:
        return (
            "stable-baselines3 is not installed (it is the `bench` extra: `pip install 'stable-baselines3>=2.3'`; `make bench` installs it)"
        )
    return None


def default_eval_every_steps() -> int:
    from fastdqn.config import preset

    return preset("cartpole-fast").eval_every_steps


def sb3_solve_run(
    seed: int,
    out_dir: Path,
    eval_every_steps: int | None = None,
    max_steps: int = ZOO_N_TIMESTEPS,
    threads: int = 1,
    timeout: float = 900,
) -> dict[str, Any]:
    """Run this file as a script for one seed and time the whole process; (seed, process wall, solve step)."""
    from bench.solve import first_solve

    every = eval_every_steps if eval_every_steps is not None else default_eval_every_steps()
    out_dir.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, str(Path(__file__).resolve()), "--seed", str(seed), "--out", str(out_dir)]
    command += ["--eval-every-steps", str(every), "--max-steps", str(max_steps), "--threads", str(threads)]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"`{' '.join(command)}` exited {done.returncode}: {done.stderr.strip()[-600:]}")
    env_steps, solve_s = first_solve(out_dir / "metrics.csv")
    return {
        "seed": seed,
        "process_wall_s": wall,
        "solved_env_steps": env_steps,
        "solved_in_run_s": solve_s,
        "eval_every_steps": every,
        "max_steps": max_steps,
        "threads": threads,
    }


def train(seed: int, out_dir: Path, eval_every_steps: int, max_steps: int, threads: int) -> None:
    """The child process: SB3 DQN on CartPole-v1 until a greedy evaluation says solved or `max_steps`."""
    import gymnasium as gym
    import numpy as np
    import torch
    from stable_baselines3 import DQN
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env

    from fastdqn.sysinfo import process_age_seconds

    start = time.perf_counter() - (process_age_seconds() or 0.0)
    torch.set_num_threads(threads)
    eval_envs = gym.make_vec("CartPole-v1", num_envs=EVAL_EPISODES, vectorization_mode="sync")

    def greedy_returns(model: DQN) -> np.ndarray:
        """(20,) returns of one greedy episode per env, every env reset with the same seed each time."""
        obs, _ = eval_envs.reset(seed=seed + EVAL_SEED_OFFSET)
        returns = np.zeros(EVAL_EPISODES)
        running = np.ones(EVAL_EPISODES, dtype=bool)
        while running.any():
            actions, _ = model.predict(obs, deterministic=True)
            obs, rewards, terminated, truncated, _ = eval_envs.step(actions)
            returns += np.where(running, rewards, 0.0)
            running &= ~(terminated | truncated)
        return returns

    out_dir.mkdir(parents=True, exist_ok=True)
    with (out_dir / "metrics.csv").open("w", newline="") as f:
        rows = csv.writer(f)
        rows.writerow(["env_steps", "wall_s", "eval_return_mean"])

        class SolveCheck(BaseCallback):
            def _on_step(self) -> bool:
                """False stops `learn`: a solving evaluation, or the step cap."""
                if self.num_timesteps % eval_every_steps == 0:
                    mean = float(greedy_returns(self.model).mean())
                    rows.writerow([self.num_timesteps, f"{time.perf_counter() - start:.3f}", f"{mean:.2f}"])
                    f.flush()
                    if mean >= SOLVED_RETURN:
                        return False
                return self.num_timesteps < max_steps

        env = make_vec_env("CartPole-v1", n_envs=1, seed=seed)
        # the zoo's exploration schedule in env steps, whatever the cap: its length is a fraction of
        # the budget learn() is given, the zoo's 5e4 unless a higher cap lets an unsolved seed go on
        total = max(ZOO_N_TIMESTEPS, max_steps)
        fraction = float(ZOO_CARTPOLE["exploration_fraction"]) * ZOO_N_TIMESTEPS / total
        model = DQN(env=env, seed=seed, device="cpu", verbose=0, **{**ZOO_CARTPOLE, "exploration_fraction": fraction})
        model.learn(total_timesteps=total, callback=SolveCheck())
    eval_envs.close()
    env.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True, help="folder for metrics.csv")
    parser.add_argument("--eval-every-steps", type=int, default=None, help="default: fastdqn's cartpole preset's interval")
    parser.add_argument(
        "--max-steps",
        type=int,
        default=ZOO_N_TIMESTEPS,
        help="stop here if not solved (default: the zoo's 5e4; above it an unsolved seed goes on)",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (the bench's, 1 by default)")
    args = parser.parse_args(argv)
    every = args.eval_every_steps if args.eval_every_steps is not None else default_eval_every_steps()
    train(args.seed, args.out, every, args.max_steps, args.threads)
    return 0


if __name__ == "__main__":
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))  # run as a script: `fastdqn` from this checkout, as bench/run.py does
    sys.exit(main())
