"""A long CartPole run with its resident memory sampled: memory must stay flat once the buffer is full.

    python bench/memory_soak.py [--steps 1000000] [--num-envs 64]

Prints one JSON line: wall seconds, env steps, and (seconds, RSS MiB) samples every 2 s.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=1_000_000)
    parser.add_argument("--num-envs", type=int, default=64)
    args = parser.parse_args()
    import fastdqn

    samples: list[tuple[float, float]] = []
    done = threading.Event()
    start = time.perf_counter()

    def sample() -> None:
        while not done.is_set():
            samples.append((round(time.perf_counter() - start, 1), round(rss_mib(), 1)))
            time.sleep(2.0)

    threading.Thread(target=sample, daemon=True).start()
    with tempfile.TemporaryDirectory() as out:
        cfg = fastdqn.Config(
            num_envs=args.num_envs,
            total_steps=args.steps,
            stop_at_return=None,
            eval_every_steps=20_000,
            log_every_steps=5_000,
            checkpoint_every_steps=200_000,
            out_dir=out,
            save_plot=False,
            device="cpu",
        )
        run = fastdqn.train(cfg)
    done.set()
    print(json.dumps({"wall_s": round(time.perf_counter() - start, 1), "env_steps": run.env_steps, "rss_mib": samples}))


if __name__ == "__main__":
    main()
