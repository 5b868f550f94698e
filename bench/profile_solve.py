"""Where the wall time of `fastdqn train --seed S` goes: imports, set-up, act, env steps, replay, updates, evals, saves, plot.

    python bench/profile_solve.py [--seed S] [--out DIR] [--markdown | --json] [-- extra `fastdqn train` options]

Runs the CLI's `train` in this process, as `fastdqn train --quiet --seed S` would, with the public
functions and methods in `PHASES` wrapped from the outside (train.py is not edited): each call's
wall time, less the wrapped calls made inside it, goes to its phase; set-up, evaluation, checkpoint
and plot keep the time of what they call (an evaluation's act and env steps count as evaluation).
What no wrapper covers inside `train()` is "loop bookkeeping" (epsilon, the schedule and
finiteness checks). The CLI plots after it has reported the run; that plot is timed as "plot" all
the same. Interpreter start-up comes from the OS (`/proc/self/stat`); the interpreter's exit after
the summary is not seen from inside.

After the loop is refactored, repoint the names in `PHASES`: each is `module:qualname` where the
training code looks it up (a function that train.py imports by name is patched in `fastdqn.train`,
a method on its class). A name that no longer resolves is listed as missing, not an error.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import io
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

PHASES: dict[str, tuple[str, ...]] = {
    "set-up": (
        "fastdqn.train:seed_everything",
        "fastdqn.train:make_envs",
        "fastdqn.train:build_replay",
        "fastdqn.agent:DQNAgent.__init__",
        "fastdqn.evaluate:Evaluator.for_run",
        "fastdqn.train:make_run_dir",
        "fastdqn.train:make_collector",
    ),
    "act": ("fastdqn.agent:DQNAgent.act",),
    "env step": ("fastdqn.envs.gymnasium:GymnasiumEnv.step", "fastdqn.envs.classic:TorchVectorEnv.step"),
    "replay extend": ("fastdqn.buffer:ReplayBuffer.extend",),
    "collector (rest of act, step, write)": ("fastdqn.collect:Collector.step", "fastdqn.collect:FusedCollector.step"),
    "episode tracking": ("fastdqn.episodes:EpisodeTracker.record", "fastdqn.episodes:EpisodeTracker.flush"),
    "replay sample": ("fastdqn.buffer:ReplayBuffer.sample_tensors",),
    "update": ("fastdqn.agent:DQNAgent.update",),
    "evaluation": ("fastdqn.evaluate:Evaluator.run",),
    "checkpoint": ("fastdqn.engine:save", "fastdqn.agent:DQNAgent.save"),
    "metrics and progress": ("fastdqn.metrics:Metrics.__init__", "fastdqn.metrics:Metrics.log", "fastdqn.metrics:Metrics.add_episodes"),
    "plot": ("fastdqn.plot:plot_run",),
    "close envs and files": ("fastdqn.metrics:Metrics.close", "fastdqn.evaluate:Evaluator.close"),
}
"""Phase -> the `module:qualname`s whose calls it is charged with (time inside nested wrapped calls excluded)."""
ABSORBING = frozenset({"set-up", "evaluation", "checkpoint", "plot"})
"""Phases that keep the time of the wrapped calls they make (an evaluation's act and env steps)."""
TRAIN = "fastdqn.train:train"
"""The whole of `train()`; what the phases do not cover inside it is loop bookkeeping."""


class Clock:
    """Exclusive wall time per phase: a wrapped call's time less that of the wrapped calls it makes.

    Inside a call of an `ABSORBING` phase, wrapped calls are not timed apart: their time stays
    with it (the act and env steps of an evaluation are evaluation).
    """

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self._children: list[float] = []
        self._absorbing = 0

    def wrap(self, phase: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        absorbing = phase in ABSORBING

        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            if self._absorbing:
                return fn(*args, **kwargs)
            self._children.append(0.0)
            self._absorbing += absorbing
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - start
                self._absorbing -= absorbing
                inner = self._children.pop()
                self.seconds[phase] = self.seconds.get(phase, 0.0) + elapsed - inner
                self.calls[phase] = self.calls.get(phase, 0) + 1
                if self._children:
                    self._children[-1] += elapsed

        return timed


def install(clock: Clock, phase: str, target: str) -> bool:
    """Wrap `module:qualname` in place; False when it does not resolve (the code moved)."""
    module_name, _, qualname = target.partition(":")
    try:
        owner: Any = importlib.import_module(module_name)
    except ImportError:
        return False
    *path, name = qualname.split(".")
    for part in path:
        owner = getattr(owner, part, None)
        if owner is None:
            return False
    raw = vars(owner).get(name) if isinstance(owner, type) else getattr(owner, name, None)
    if raw is None:
        return False
    if isinstance(raw, classmethod):
        setattr(owner, name, classmethod(clock.wrap(phase, raw.__func__)))
    elif isinstance(raw, staticmethod):
        setattr(owner, name, staticmethod(clock.wrap(phase, raw.__func__)))
    else:
        setattr(owner, name, clock.wrap(phase, raw))
    return True


def profile(seed: int, out_dir: Path, extra: list[str]) -> dict[str, Any]:
    """Run `fastdqn train --quiet --seed S --out DIR [extra]` here; seconds per phase, process start to summary."""
    from fastdqn.sysinfo import process_age_seconds

    script_start = time.perf_counter()
    process_start = script_start - (process_age_seconds() or 0.0)
    importlib.import_module("fastdqn.cli")
    importlib.import_module("fastdqn.train")  # what `train` imports when the command runs
    imported = time.perf_counter()
    clock = Clock()
    missing = [target for phase, targets in PHASES.items() for target in targets if not install(clock, phase, target)]
    if not install(clock, "train", TRAIN):
        missing.append(TRAIN)
    from fastdqn.cli import main

    argv = sys.argv
    sys.argv = ["fastdqn", "train", "--quiet", "--seed", str(seed), "--out", str(out_dir), *extra]
    cli_start = time.perf_counter()
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # the summary table is printed (and timed), not shown
            main()
    except SystemExit as exit_:
        if exit_.code not in (0, None):
            raise
    finally:
        sys.argv = argv
    end = time.perf_counter()
    phases = {
        "interpreter start-up": script_start - process_start,
        "imports (fastdqn.cli, fastdqn.train)": imported - script_start,
        "profiler set-up": cli_start - imported,
    }
    in_train = clock.seconds.get("train", 0.0)  # train()'s own time: what no phase inside it covers
    phases.update({phase: clock.seconds.get(phase, 0.0) for phase in PHASES})
    phases["loop bookkeeping (rest of train)"] = in_train
    wrapped = sum(clock.seconds.values())
    phases["CLI: options, config, summary table"] = (end - cli_start) - wrapped  # every wrapped call runs under main()
    return {
        "seed": seed,
        "total_s": end - process_start,
        "phases": phases,
        "calls": {phase: clock.calls.get(phase, 0) for phase in PHASES},
        "missing": missing,
    }


def profile_run(seed: int, extra: tuple[str, ...] = (), timeout: float = 600) -> dict[str, Any]:
    """Run this file for one seed in a fresh process (so imports are cold) and return its figures."""
    command = [sys.executable, str(Path(__file__).resolve()), "--seed", str(seed), "--json", "--", *extra]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"`{' '.join(command)}` exited {done.returncode}: {done.stderr.strip()[-600:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def rows(result: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    total = result["total_s"]
    out = [
        (phase, f"{seconds:.2f}", f"{seconds / total:.0%}", str(result["calls"].get(phase, "")))
        for phase, seconds in result["phases"].items()
    ]
    out.append(("total (process start to summary printed)", f"{total:.2f}", "100%", ""))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None, help="run folder parent (default: a temporary folder)")
    parser.add_argument("--markdown", action="store_true", help="print a markdown table (for the README)")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON line (what `make bench` reads)")
    parser.add_argument("extra", nargs="*", help="more `fastdqn train` options, after `--`")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        result = profile(args.seed, args.out or Path(tmp), args.extra)
    headers = ("phase", "seconds", "share", "calls")
    if args.json:
        print(json.dumps(result))
    elif args.markdown:
        print("| " + " | ".join(headers) + " |\n|" + "---|" * len(headers))
        for line in rows(result):
            print("| " + " | ".join(line) + " |")
    else:
        for line in (headers, *rows(result)):
            print(f"{line[0]:<44} {line[1]:>8} {line[2]:>6} {line[3]:>8}")
    if result["missing"]:
        print(f"not found (repoint PHASES): {', '.join(result['missing'])}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))  # run as a script: `fastdqn` from this checkout
    sys.exit(main())
