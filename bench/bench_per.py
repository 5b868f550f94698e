"""Prioritized replay: sample(256) and update-priorities(256) at capacity 2^20 rows, fastdqn vs NumPy.

fastdqn's `PrioritizedSampler` (a wide sum tree in torch tensors, walked for the whole batch at
once) against `bench/baselines/numpy_sumtree.py`, a binary NumPy sum tree walked for the whole batch
at once (one op per level) and, in the tutorial form, one sample at a time. Both `sample` cases
also gather the sampled rows (CartPole-sized: obs 4 float32, action, reward, next_obs, terminated),
so they time what the training loop pays for one prioritized batch; `draw` cases time the index and
weight draw alone.

TorchRL's `PrioritizedReplayBuffer` is not a case: torchrl 0.14.1 installs beside torch 2.13.0 but
its C++ segment tree does not load against it (undefined symbol), and the sampler refuses to start.

Figures (best of two runs of `python bench/bench_per.py`, cpu, torch 2.13.0, numpy 2.4.6, 1 thread,
a shared 2-core machine under load from other jobs, so only the ratios within a run mean much):
    sample (draw + rows)  fastdqn 305 us   numpy-batched 231 us   numpy-loop 1383 us
    draw                  fastdqn 225 us   numpy-batched 157 us
    update                fastdqn  81 us   numpy-batched 136 us   numpy-loop 1433 us
One gradient step pays a sample and an update: 386 us for fastdqn, 367 us for the batched NumPy
tree, 2816 us for the tutorial's loop. The torch tree does a fixed ~30 ops per draw and ~10 per
update; NumPy's binary tree does ~5 per level for 20 levels, but a NumPy op on 256 values costs a
fraction of a torch op's dispatch, so NumPy still draws faster on cpu while fastdqn updates faster.
No cuda figures: no GPU was at hand.

Run: `python -m pytest bench/bench_per.py --benchmark-only` (pytest-benchmark), or
`python bench/bench_per.py` for a quick table (min over repeats; one thread unless --threads).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.baselines.numpy_sumtree import NumpySumTree
from fastdqn.buffer import ReplayBuffer
from fastdqn.per import PrioritizedSampler

CAPACITY = 1 << 20
BATCH = 256
OBS_DIM = 4
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"))]


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def fastdqn_buffer(device: str, capacity: int = CAPACITY, fanout: int = 64) -> ReplayBuffer:
    """A full prioritized buffer whose priorities have been updated once at random."""
    sampler = PrioritizedSampler(capacity, device, alpha=0.6, eps=1e-6, seed=0, fanout=fanout)
    buffer = ReplayBuffer.create(capacity, (OBS_DIM,), device=device, sampler=sampler)
    rows = torch.arange(capacity, device=device)
    buffer.extend(
        {
            "obs": rows.float().unsqueeze(1).expand(-1, OBS_DIM),
            "action": rows % 2,
            "reward": torch.ones(capacity, device=device),
            "next_obs": rows.float().unsqueeze(1).expand(-1, OBS_DIM),
            "terminated": rows % 100 == 0,
        }
    )
    generator = torch.Generator(device=device).manual_seed(1)
    sampler.update(rows, torch.rand(capacity, generator=generator, device=device))
    sampler.beta = 0.4
    return buffer


class NumpyBuffer:
    """NumPy rows plus the NumPy sum tree: what a NumPy PER buffer pays for one batch."""

    def __init__(self, capacity: int = CAPACITY):
        self.tree = NumpySumTree(capacity, alpha=0.6, eps=1e-6, seed=0)
        self.tree.fill(capacity)
        self.tree.update(np.arange(capacity), np.random.default_rng(1).random(capacity))
        rows = np.arange(capacity)
        self.fields = {
            "obs": np.repeat(rows[:, None].astype(np.float32), OBS_DIM, axis=1),
            "action": rows % 2,
            "reward": np.ones(capacity, dtype=np.float32),
            "next_obs": np.repeat(rows[:, None].astype(np.float32), OBS_DIM, axis=1),
            "terminated": rows % 100 == 0,
        }

    def sample(self, batch_size: int, loop: bool = False) -> dict[str, np.ndarray]:
        index, weights = (self.tree.sample_loop if loop else self.tree.sample)(batch_size, 0.4)
        batch = {name: field[index] for name, field in self.fields.items()}
        batch["weights"] = weights
        return batch


def cases(device: str) -> dict[str, Callable[[], Any]]:
    """name -> a callable doing one batch of work (synchronised on CUDA)."""
    dev = torch.device(device)
    buffer = fastdqn_buffer(device)
    batch = buffer.sample_tensors(BATCH)
    assert batch.storage_index is not None
    index, priorities = batch.storage_index, torch.rand(BATCH, device=dev)

    def fastdqn_sample() -> None:
        buffer.sample_tensors(BATCH)
        synchronize(dev)

    def fastdqn_update() -> None:
        buffer.update_priorities(index, priorities)
        synchronize(dev)

    def fastdqn_draw() -> None:
        buffer.sampler.sample(len(buffer), BATCH)
        synchronize(dev)

    out: dict[str, Callable[[], Any]] = {
        f"sample[fastdqn-{device}]": fastdqn_sample,
        f"draw[fastdqn-{device}]": fastdqn_draw,
        f"update[fastdqn-{device}]": fastdqn_update,
    }
    if device == "cpu":
        numpy_buffer = NumpyBuffer()
        np_index, np_priorities = numpy_buffer.tree.sample(BATCH, 0.4)[0], np.random.default_rng(2).random(BATCH)
        out["sample[numpy-batched]"] = lambda: numpy_buffer.sample(BATCH)
        out["draw[numpy-batched]"] = lambda: numpy_buffer.tree.sample(BATCH, 0.4)
        out["update[numpy-batched]"] = lambda: numpy_buffer.tree.update(np_index, np_priorities)
        out["sample[numpy-loop]"] = lambda: numpy_buffer.sample(BATCH, loop=True)
        out["update[numpy-loop]"] = lambda: numpy_buffer.tree.update_loop(np_index, np_priorities)
    return out


@pytest.fixture(scope="module", params=DEVICES)
def per_cases(request: pytest.FixtureRequest) -> dict[str, Callable[[], Any]]:
    torch.set_num_threads(1)
    return cases(str(request.param))


@pytest.mark.parametrize("kind", ["sample", "draw", "update"])
@pytest.mark.parametrize("impl", ["fastdqn", "numpy-batched", "numpy-loop"])
def test_bench_per(benchmark: Any, per_cases: dict[str, Callable[[], Any]], kind: str, impl: str) -> None:
    matches = [fn for name, fn in per_cases.items() if name.startswith(f"{kind}[{impl}")]
    if not matches:
        pytest.skip(f"no {impl} case on this device")
    benchmark(matches[0])


def min_times(timed: dict[str, Callable[[], Any]], repeats: int = 7) -> dict[str, float]:
    """Min over repeats of the mean microseconds per call; the cases take turns, so a busy machine slows all alike."""
    number = {name: 3 if "loop" in name else 30 for name in timed}
    for name, fn in timed.items():
        for _ in range(number[name]):
            fn()
    best = dict.fromkeys(timed, float("inf"))
    for _ in range(repeats):
        for name, fn in timed.items():
            start = time.perf_counter()
            for _ in range(number[name]):
                fn()
            best[name] = min(best[name], (time.perf_counter() - start) / number[name] * 1e6)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--devices", nargs="+", default=["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, numpy {np.__version__}, threads {torch.get_num_threads()}, capacity {CAPACITY}, batch {BATCH}")
    for device in args.devices:
        for name, micros in min_times(cases(device)).items():
            print(f"{name:28s} {micros:9.1f} us")


if __name__ == "__main__":
    main()
