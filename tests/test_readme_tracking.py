"""The README's "Track and share runs" commands name commands and options that exist."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fastdqn.cli import app

README = Path(__file__).resolve().parents[1] / "README.md"


def section_commands() -> list[list[str]]:
    text = README.read_text()
    start = text.index("## Track and share runs")
    block = text[start:].split("```bash\n", 1)[1].split("```", 1)[0]
    commands = []
    for line in block.splitlines():
        words = shlex.split(line.split("  #", 1)[0].replace("<", "").replace(">", ""))
        if ".venv/bin/fastdqn" in words:
            commands.append(words[words.index(".venv/bin/fastdqn") + 1 :])
    return commands


@pytest.mark.parametrize("command", section_commands(), ids=lambda words: " ".join(words[:2]))
def test_readme_tracking_commands_use_options_the_cli_has(command: list[str]) -> None:
    result = CliRunner().invoke(app, [command[0], "--help"], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    for option in (word for word in command[1:] if word.startswith("-")):
        assert re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", result.output), f"{option} is not an option of fastdqn {command[0]}"


def test_readme_tracking_section_shows_each_new_command() -> None:
    used = {(words[0], option) for words in section_commands() for option in words[1:] if option.startswith("--")}
    expected = {("train", "--log"), ("config", "--preset"), ("train", "--config"), ("eval", "--video"), ("compare", "--out")}
    assert expected <= used
