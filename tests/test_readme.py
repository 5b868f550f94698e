"""The README's own-loop example runs as written and does what its comments say."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks(section: str) -> list[str]:
    text = README.read_text()
    start = text.index(section)
    end = text.find("\n## ", start + len(section))
    body = text[start : end if end != -1 else len(text)]
    return [block.split("```", 1)[0] for block in body.split("```python\n")[1:]]


def test_readme_own_loop_example_fills_the_buffer_without_reset_rows_and_learns() -> None:
    own_loop = next(block for block in python_blocks("## Use it as a library") if "buffer.extend" in block)
    scope: dict[str, Any] = {}
    exec(compile(own_loop, str(README), "exec"), scope)
    buffer, agent, stats = scope["buffer"], scope["agent"], scope["stats"]
    vector_steps, num_envs = 2_000, 8
    dropped = vector_steps * num_envs - len(buffer)
    assert 0 < dropped < vector_steps * num_envs // 10  # each ended episode's autoreset step, and nothing else
    steps_before_updates = vector_steps - agent.updates  # one update a step once 500 rows are stored
    assert 500 // num_envs <= steps_before_updates <= 500 * 1.2 // num_envs
    assert torch.isfinite(stats["loss"])
