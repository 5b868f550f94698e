"""Start-up: process wall of `fastdqn --help` and `fastdqn info`, interpreter start to exit (the issue: under 1 s each)."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest

from bench.conftest import PROFILE
from bench.solve import fastdqn_command

COMMANDS = {"help": ["--help"], "info": ["info"]}


@pytest.mark.parametrize("command", list(COMMANDS))
def bench_startup(benchmark: Any, command: str) -> None:
    argv = [*fastdqn_command(), *COMMANDS[command]]

    def run() -> None:
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)

    benchmark.extra_info.update(unit="s", what=f"`fastdqn {' '.join(COMMANDS[command])}`, whole process")
    # one warm-up process: the first after a while reads the files from disk, not the page cache
    benchmark.pedantic(run, rounds=PROFILE.startup_rounds, iterations=1, warmup_rounds=1)
