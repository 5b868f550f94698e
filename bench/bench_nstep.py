"""n-step returns: computed at write time (`fastdqn.nstep.NStepWriter`) vs at sample time.

One case is one vector step of the training loop's replay work at the CartPole defaults: 16 envs,
N = 3, then `gradient_steps` = 4 samples of 64 rows. Write time pushes the step into the per-env
window and extends the ring with the rows it completes, then samples plain rows. Sample time stores
one-step rows in a (steps, envs) ring and, for each sampled (step, env), gathers the next N steps of
that env, masks them at the first episode end and at the newest written step, and sums the return
(the way a sample-time n-step buffer has to; here written just for this comparison). `one-step`
is the plain loop's replay work (drop the autoreset rows, extend, sample) for reference.

Run: `python -m pytest bench/bench_nstep.py --benchmark-only`, or `python bench/bench_nstep.py`.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fastdqn.buffer import ReplayBuffer
from fastdqn.nstep import NStepWriter

NUM_ENVS, OBS_DIM, N_STEP, GAMMA = 16, 4, 3, 0.98
BATCH, GRADIENT_STEPS, CAPACITY = 64, 4, 100_000


def fake_steps(count: int, device: torch.device, seed: int = 0) -> list[tuple[dict[str, torch.Tensor], np.ndarray, np.ndarray, np.ndarray]]:
    """Env steps with episodes of random length (about 1 in 50 steps ends one), NEXT_STEP masks included."""
    rng = np.random.default_rng(seed)
    steps = []
    prev_done = np.zeros(NUM_ENVS, dtype=bool)
    for _ in range(count):
        terminated = rng.random(NUM_ENVS) < 0.015
        truncated = ~terminated & (rng.random(NUM_ENVS) < 0.005)
        rows = {
            "obs": torch.from_numpy(rng.random((NUM_ENVS, OBS_DIM), dtype=np.float32)).to(device),
            "action": torch.from_numpy(rng.integers(0, 2, NUM_ENVS)).to(device),
            "reward": torch.ones(NUM_ENVS, device=device),
            "next_obs": torch.from_numpy(rng.random((NUM_ENVS, OBS_DIM), dtype=np.float32)).to(device),
            "terminated": torch.from_numpy(terminated).to(device),
        }
        steps.append((rows, prev_done, terminated, truncated))
        prev_done = terminated | truncated
    return steps


class SampleTimeNStep:
    """One-step rows in a (steps, envs) ring; n-step targets assembled per sampled row."""

    def __init__(self, device: torch.device, steps: int = CAPACITY // NUM_ENVS):
        self.device, self.steps, self.cursor, self.written = device, steps, 0, 0
        self.obs = torch.zeros((steps, NUM_ENVS, OBS_DIM), device=device)
        self.next_obs = torch.zeros((steps, NUM_ENVS, OBS_DIM), device=device)
        self.action = torch.zeros((steps, NUM_ENVS), dtype=torch.int64, device=device)
        self.reward = torch.zeros((steps, NUM_ENVS), device=device)
        self.terminated = torch.zeros((steps, NUM_ENVS), dtype=torch.bool, device=device)
        self.ends = torch.zeros((steps, NUM_ENVS), dtype=torch.bool, device=device)  # terminated | truncated
        self.offsets = torch.arange(N_STEP, device=device)
        self.gamma_powers = GAMMA ** torch.arange(N_STEP + 1, device=device, dtype=torch.float32)
        self.generator = torch.Generator(device=device).manual_seed(0)

    def extend(self, rows: dict[str, torch.Tensor], reset_step: np.ndarray, terminated: np.ndarray, truncated: np.ndarray) -> None:
        t = self.cursor
        for name in ("obs", "next_obs", "action", "reward", "terminated"):
            getattr(self, name)[t] = rows[name]
        # the autoreset step is stored too (the layout is by step), marked as an end so no window crosses it
        self.ends[t] = torch.from_numpy(terminated | truncated | reset_step).to(self.device)
        self.cursor = (t + 1) % self.steps
        self.written = min(self.written + 1, self.steps)

    def sample(self, batch_size: int) -> dict[str, torch.Tensor]:
        flat = torch.randint(0, self.written * NUM_ENVS, (batch_size,), generator=self.generator, device=self.device)
        start, env = flat // NUM_ENVS, flat % NUM_ENVS
        age = (self.cursor - 1 - start) % self.steps  # steps written after `start`
        steps = (start.unsqueeze(1) + self.offsets) % self.steps  # (B, N)
        env_n = env.unsqueeze(1).expand(-1, N_STEP)
        ended = self.ends[steps, env_n]  # (B, N)
        # step j counts while no earlier step of the window ended the episode and it has been written
        inside = torch.cat([torch.ones_like(ended[:, :1]), ~ended[:, :-1]], 1).cumprod(1).bool() & (self.offsets <= age.unsqueeze(1))
        k = inside.sum(1)  # (B,)
        ret = (self.reward[steps, env_n] * self.gamma_powers[:N_STEP] * inside).sum(1)
        last = steps.gather(1, (k - 1).unsqueeze(1)).squeeze(1)
        terminated = (self.terminated[steps, env_n] & inside).any(1)
        return {
            "obs": self.obs[start, env],
            "action": self.action[start, env],
            "reward": ret,
            "next_obs": self.next_obs[last, env],
            "terminated": terminated,
            "discount": self.gamma_powers[k] * (~terminated).float(),
        }


def cases(device_name: str) -> dict[str, Callable[[], Any]]:
    device = torch.device(device_name)
    steps = fake_steps(256, device)
    writer = NStepWriter(N_STEP, GAMMA, NUM_ENVS, (OBS_DIM,), torch.float32, device)
    buffer = ReplayBuffer.create(CAPACITY, (OBS_DIM,), device=device, discount=True)
    sample_time = SampleTimeNStep(device)
    one_step = ReplayBuffer.create(CAPACITY, (OBS_DIM,), device=device)
    for step in steps:  # fill so that samples draw from a warm ring
        buffer.extend(writer.push(*step))
        sample_time.extend(*step)
        one_step.extend(step[0])
    position = [0]

    def next_step() -> tuple[dict[str, torch.Tensor], np.ndarray, np.ndarray, np.ndarray]:
        position[0] = (position[0] + 1) % len(steps)
        return steps[position[0]]

    def write_time() -> None:
        buffer.extend(writer.push(*next_step()))
        for _ in range(GRADIENT_STEPS):
            buffer.sample_tensors(BATCH)
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    def at_sample_time() -> None:
        sample_time.extend(*next_step())
        for _ in range(GRADIENT_STEPS):
            sample_time.sample(BATCH)
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    def plain_one_step() -> None:
        rows, reset_step, _, _ = next_step()
        keep = torch.from_numpy(np.flatnonzero(~reset_step)).to(device)
        one_step.extend({name: value[keep] for name, value in rows.items()})
        for _ in range(GRADIENT_STEPS):
            one_step.sample_tensors(BATCH)
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    return {
        f"write-time[{device_name}]": write_time,
        f"sample-time[{device_name}]": at_sample_time,
        f"one-step[{device_name}]": plain_one_step,
    }


DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"))]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("where", ["write-time", "sample-time", "one-step"])
def test_bench_nstep_vector_step(benchmark: Any, device: str, where: str) -> None:
    torch.set_num_threads(1)
    benchmark(cases(device)[f"{where}[{device}]"])


def main() -> None:
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, threads 1, {NUM_ENVS} envs, N={N_STEP}, {GRADIENT_STEPS} x sample({BATCH}) per vector step")
    for device in ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]:
        timed = cases(device)
        for name, seconds in min_times(timed).items():
            print(f"{name:22s} {seconds * 1e6:8.1f} us per vector step")


def min_times(timed: dict[str, Callable[[], Any]], repeats: int = 9, number: int = 50) -> dict[str, float]:
    """Min over repeats of the mean seconds per call; the cases take turns, so a busy machine slows all alike."""
    for fn in timed.values():
        for _ in range(10):
            fn()
    best = dict.fromkeys(timed, float("inf"))
    for _ in range(repeats):
        for name, fn in timed.items():
            start = time.perf_counter()
            for _ in range(number):
                fn()
            best[name] = min(best[name], (time.perf_counter() - start) / number)
    return best


if __name__ == "__main__":
    main()
