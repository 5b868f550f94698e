"""Memory cases: bytes per stored transition and peak process memory, each measured in a fresh process.

`python -m bench.memory <kind> <rows> <device>` builds one full buffer and prints a JSON line; a
fresh process keeps the peak RSS free of everything else the bench has allocated.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
KINDS = {"cartpole": ((4,), "float32"), "atari": ((4, 84, 84), "uint8")}
"""kind -> (obs shape, obs dtype): CartPole rows, and 84x84x4 uint8 frames stacked as DQN's Atari input."""


def peak_rss_bytes() -> int:
    """This interpreter's peak resident memory.

    Linux's `VmHWM` first: `ru_maxrss` survives fork + exec, so a probe started by a process that
    once held gigabytes would report the parent's peak instead of its own.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # ru_maxrss is KiB on Linux


def rss_bytes() -> int:
    """Resident memory now (Linux `/proc/self/statm`); falls back to the peak elsewhere."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * resource.getpagesize()
    except OSError:
        return peak_rss_bytes()


def probe(kind: str, rows: int, device: str, impl: str) -> dict[str, Any]:
    import numpy as np
    import torch

    from fastdqn import ReplayBuffer

    shape, dtype = KINDS[kind]
    before = rss_bytes()
    start = time.perf_counter()
    if impl == "baseline":
        from bench.baselines.tutorial_buffer import ReplayBufferQue

        memory = ReplayBufferQue(rows)
        for i in range(rows):  # a fresh array per row, as each env step returns one
            memory.push((np.zeros(shape, dtype), i % 2, 1.0, np.zeros(shape, dtype), False))
        stored = len(memory)
        buffer_bytes = None
    else:
        buffer = ReplayBuffer.create(rows, shape, getattr(torch, dtype), device=device)
        for field in buffer.storage.fields.values():
            field.fill_(1)  # touch every page, as a filled buffer would
        stored = buffer.capacity
        buffer_bytes = buffer.nbytes
    seconds = time.perf_counter() - start
    after = rss_bytes()
    result: dict[str, Any] = {"rows": stored, "fill_s": seconds, "rss_before_bytes": before, "rss_after_bytes": after}
    result["peak_rss_bytes"] = peak_rss_bytes()
    result["bytes_per_transition"] = (buffer_bytes / stored) if buffer_bytes is not None else (after - before) / stored
    if buffer_bytes is not None:
        result["buffer_bytes"] = buffer_bytes
    if device.startswith("cuda"):
        result["cuda_peak_bytes"] = torch.cuda.max_memory_allocated(device)
    return result


def measure(kind: str, rows: int, device: str, impl: str = "fastdqn", timeout: float = 300) -> dict[str, Any]:
    """Run `probe` in a fresh interpreter and return its figures; raises with its stderr on failure."""
    command = [sys.executable, "-m", "bench.memory", kind, str(rows), device, impl]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"memory probe {kind} {rows} {device} {impl} failed: {done.stderr.strip()[-600:]}")
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


if __name__ == "__main__":
    print(json.dumps(probe(sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4])))
