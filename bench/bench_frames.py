"""Frame-deduplicated replay (`FrameStorage`) against naive stacked storage, on 84x84x4 uint8 rows.

Measures bytes per transition, `extend` of one 16-env step, and `sample_tensors(32 / 256)`, on cpu
and on cuda where present. Synthetic frames (a pool of random 84x84 frames, 4-frame stacks with
episodes of 100 steps) take the env out of the measurement.

    python bench/bench_frames.py                 # the table, 50k rows held
    python bench/bench_frames.py --alloc-1m      # also allocate a 1M-row Atari FrameStorage, then free it

The `bench_*` functions are pytest-benchmark cases for `bench/run.py` (50k rows, 20k in --quick).
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.stats import median_seconds
from fastdqn.buffer import ReplayBuffer
from fastdqn.frames import FrameStorage, frame_replay_buffer

FRAME = (84, 84)
STACK = 4
NUM_ENVS = 16
EPISODE = 100
POOL = 509  # distinct frames; prime, so env streams do not line up


def synthetic_steps(num_envs: int = NUM_ENVS, device: str = "cpu", seed: int = 0) -> Iterator[dict[str, torch.Tensor]]:
    """Rows as the train loop extends them: rolling stacks, fresh (repeated) stacks at episode starts."""
    pool = torch.randint(0, 256, (POOL, *FRAME), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed)).to(device)
    env = torch.arange(num_envs, device=device)
    offsets = torch.arange(STACK, device=device) - (STACK - 1)  # -3..0
    t = 0
    while True:
        step_in_episode = (t + 13 * env) % EPISODE  # (E,) staggered episodes
        start = t - step_in_episode
        obs_k = torch.maximum(t + offsets[None], start[:, None])  # (E, S) frame times, clamped at the start
        next_k = torch.maximum(t + 1 + offsets[None], start[:, None])
        yield {
            "obs": pool[(env[:, None] * 101 + obs_k) % POOL],
            "action": torch.randint(0, 6, (num_envs,), device=device),
            "reward": torch.zeros(num_envs, device=device),
            "next_obs": pool[(env[:, None] * 101 + next_k) % POOL],
            "terminated": step_in_episode == EPISODE - 1,
            "env": env,
        }
        t += 1


def make_buffer(kind: str, capacity: int, device: str) -> ReplayBuffer:
    if kind == "frames":
        return frame_replay_buffer(capacity, (STACK, *FRAME), NUM_ENVS, device, seed=0)
    return ReplayBuffer.create(capacity, (STACK, *FRAME), torch.uint8, device, seed=0)


def filled(kind: str, rows: int, device: str) -> tuple[ReplayBuffer, Iterator[dict[str, torch.Tensor]]]:
    buffer = make_buffer(kind, rows, device)
    steps = synthetic_steps(device=device)
    for _ in range(rows // NUM_ENVS):
        buffer.extend(next(steps))
    return buffer, steps


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def sample_fn(buffer: ReplayBuffer, batch_size: int, device: str) -> Callable[[], object]:
    def sample() -> object:
        batch = buffer.sample_tensors(batch_size)
        _sync(device)
        return batch

    return sample


def extend_fn(buffer: ReplayBuffer, steps: Iterator[dict[str, torch.Tensor]], device: str, count: int = 64) -> Callable[[], None]:
    prepared = [next(steps) for _ in range(count)]  # continuing steps, made before timing
    position = 0

    def extend() -> None:
        nonlocal position
        buffer.extend(prepared[position % count])
        position += 1
        _sync(device)

    return extend


def rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def allocate_atari_buffer(capacity: int, device: str) -> dict[str, Any]:
    """Allocate (and zero, so the pages are real) a FrameStorage for 84x84x4 Atari rows, then free it."""
    gc.collect()
    before = rss_bytes() if device == "cpu" else torch.cuda.memory_allocated(device)
    start = time.perf_counter()
    storage = FrameStorage(capacity, FRAME, STACK, NUM_ENVS, device)
    _sync(device)
    seconds = time.perf_counter() - start
    after = rss_bytes() if device == "cpu" else torch.cuda.memory_allocated(device)
    result = {"capacity": capacity, "nbytes": storage.nbytes, "measured_bytes": after - before, "seconds": seconds}
    del storage
    gc.collect()
    if device != "cpu":
        torch.cuda.empty_cache()
    return result


def devices() -> list[str]:
    return ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=50_000, help="rows held while sampling")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--alloc-1m", action="store_true", help="also allocate a 1M-row FrameStorage")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), {os.cpu_count()} cpus, {args.rows:,} rows held, 84x84x4 uint8")
    print(f"{'device':6} {'storage':7} {'B/transition':>12} {'extend 16':>10} {'sample 32':>10} {'sample 256':>10}")
    for device in devices():
        for kind in ("frames", "naive"):
            buffer, steps = filled(kind, args.rows, device)
            per_row = buffer.nbytes / buffer.capacity
            extend = median_seconds(extend_fn(buffer, steps, device))
            small = median_seconds(sample_fn(buffer, 32, device))
            large = median_seconds(sample_fn(buffer, 256, device))
            print(f"{device:6} {kind:7} {per_row:12,.0f} {extend * 1e6:8.0f}us {small * 1e6:8.0f}us {large * 1e6:8.0f}us", flush=True)
            if isinstance(buffer.storage, FrameStorage):
                print(f"{'':15}frames written per transition: {buffer.storage.frames_per_row():.3f}")
            del buffer, steps
            gc.collect()
    if args.alloc_1m:
        for device in devices():
            result = allocate_atari_buffer(1_000_000, device)
            print(
                f"1M-row FrameStorage on {device}: nbytes {result['nbytes'] / 1e9:.2f} GB ({result['nbytes'] / 2**30:.2f} GiB), "
                f"measured {result['measured_bytes'] / 1e9:.2f} GB, allocated and zeroed in {result['seconds']:.1f} s; freed"
            )


# pytest-benchmark cases (bench/run.py collects bench_*.py files and bench_* functions)
def _rows_held() -> int:
    return 20_000 if os.environ.get("FASTDQN_BENCH_QUICK") else 50_000


_DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"))]


@pytest.mark.parametrize("kind", ["frames", "naive"])
@pytest.mark.parametrize("batch_size", [32, 256])
@pytest.mark.parametrize("device", _DEVICES)
def bench_frames_sample(benchmark: Any, kind: str, batch_size: int, device: str) -> None:
    buffer, _ = filled(kind, _rows_held(), device)
    benchmark.extra_info.update(bytes_per_transition=buffer.nbytes / buffer.capacity, storage=kind)
    benchmark.pedantic(sample_fn(buffer, batch_size, device), rounds=20, iterations=10, warmup_rounds=2)


@pytest.mark.parametrize("kind", ["frames", "naive"])
@pytest.mark.parametrize("device", _DEVICES)
def bench_frames_extend(benchmark: Any, kind: str, device: str) -> None:
    buffer, steps = filled(kind, _rows_held(), device)
    benchmark.extra_info.update(bytes_per_transition=buffer.nbytes / buffer.capacity, storage=kind, num_envs=NUM_ENVS)
    benchmark.pedantic(extend_fn(buffer, steps, device), rounds=20, iterations=10, warmup_rounds=2)


if __name__ == "__main__":
    main()
