"""Memory: bytes per stored transition and peak process memory of a full buffer, in a fresh process."""

from __future__ import annotations

from typing import Any

import pytest

from bench import memory
from bench.conftest import DEVICES, PROFILE

CASES = [("cartpole", "fastdqn"), ("atari", "fastdqn"), ("cartpole", "baseline")]


@pytest.mark.parametrize(("kind", "impl"), CASES)
@pytest.mark.parametrize("device", DEVICES)
def bench_memory(benchmark: Any, device: str, kind: str, impl: str) -> None:
    if impl == "baseline" and device != "cpu":
        pytest.skip("the tutorial buffer holds host objects only")
    rows = PROFILE.memory_rows[0 if kind == "cartpole" else 1]
    figures: list[dict[str, Any]] = []
    benchmark.extra_info.update(unit="s", what=f"fill a {rows:,}-row {kind} buffer")
    benchmark.pedantic(lambda: figures.append(memory.measure(kind, rows, device, impl)), rounds=1, iterations=1)
    if figures:
        benchmark.extra_info.update(figures[0])
