"""Cost of the env-boundary finite check (fastdqn/finite.py) on collection: CartPole-v1, Gymnasium backend, 16 envs.

Collection steps/s (act -> env step -> replay write, `Collector.step`) with the check and with it
replaced by a no-op, interleaved round by round so that a busy machine slows both alike; medians.
Run: PYTHONPATH=. python bench/env_check_cost.py [rounds] [vector_steps_per_round]
"""

from __future__ import annotations

import statistics
import sys
import time
import timeit

import numpy as np
import torch

import fastdqn.envs.gymnasium as gym_adapter
from fastdqn.agent import DQNAgent
from fastdqn.collect import Collector
from fastdqn.config import Config
from fastdqn.envs import make_envs
from fastdqn.finite import check_env_arrays
from fastdqn.train import build_replay


def collection_sps(collector: Collector, vector_steps: int, num_envs: int) -> float:
    start = time.perf_counter()
    for _ in range(vector_steps):
        collector.step(0.5)
    return vector_steps * num_envs / (time.perf_counter() - start)


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 2_000
    torch.set_num_threads(1)
    cfg = Config(env_id="CartPole-v1", env_backend="gymnasium", num_envs=16, device="cpu", buffer_capacity=100_000, save_plot=False)
    envs = make_envs(cfg.env_id, cfg.num_envs, "gymnasium", "cpu")
    agent = DQNAgent(cfg, envs.spaces, torch.device("cpu"))
    buffer, nstep = build_replay(cfg, envs.spaces, torch.device("cpu"))
    collector = Collector(agent, envs, buffer, nstep)
    collector.reset(0)
    collection_sps(collector, 500, cfg.num_envs)  # warm-up
    on: list[float] = []
    off: list[float] = []
    for _ in range(rounds):
        gym_adapter.check_env_arrays = check_env_arrays
        on.append(collection_sps(collector, steps, cfg.num_envs))
        gym_adapter.check_env_arrays = lambda obs, rewards=None: None
        off.append(collection_sps(collector, steps, cfg.num_envs))
    gym_adapter.check_env_arrays = check_env_arrays
    obs, rewards = np.zeros((16, 4), np.float32), np.zeros(16, np.float32)
    per_call = min(timeit.repeat(lambda: check_env_arrays(obs, rewards), number=20_000, repeat=5)) / 20_000
    print(f"torch {torch.__version__}, numpy {np.__version__}, 1 torch thread, {rounds} rounds x {steps} vector steps x 16 envs")
    print(f"without check: median {statistics.median(off):,.0f} env steps/s  (min {min(off):,.0f}, max {max(off):,.0f})")
    print(f"with check:    median {statistics.median(on):,.0f} env steps/s  (min {min(on):,.0f}, max {max(on):,.0f})")
    paired = statistics.median(a / b for a, b in zip(on, off, strict=True))
    step_us = 1e6 * cfg.num_envs / statistics.median(off)
    print(f"cost: medians {100 * (1 - statistics.median(on) / statistics.median(off)):.1f}%, paired rounds {100 * (1 - paired):.1f}%")
    print(
        f"check alone: {per_call * 1e6:.2f} us per vector step = {100 * per_call * 1e6 / step_us:.1f}% of a {step_us:.0f} us collection step"
    )


if __name__ == "__main__":
    main()
