"""A checkpoint that `weights_only` loading refuses gets fastdqn's own line, never torch's advice to unsafe-load it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from fastdqn.checkpoint import CheckpointError, load_checkpoint
from fastdqn.cli import app


def leave_marker(path: str) -> None:
    Path(path).write_text("code from the checkpoint ran")


class RunsCodeWhenUnpickled:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (leave_marker, (str(self.marker),))


def test_load_checkpoint_refuses_a_file_with_code_in_one_line_of_its_own(tmp_path: Path) -> None:
    marker = tmp_path / "ran.txt"
    path = tmp_path / "model.pt"
    torch.save({"agent": RunsCodeWhenUnpickled(marker)}, path)
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(path)
    message = str(caught.value)
    assert "\n" not in message
    assert str(path) in message and "leave_marker" in message and "not loaded" in message
    assert "weights_only" not in message and "trust" not in message
    assert not marker.exists()


def test_cli_eval_of_a_file_with_code_exits_2_without_torchs_advice(tmp_path: Path) -> None:
    marker = tmp_path / "ran.txt"
    path = tmp_path / "model.pt"
    torch.save({"agent": RunsCodeWhenUnpickled(marker)}, path)
    result = CliRunner().invoke(app, ["eval", str(path)])
    assert result.exit_code == 2
    output = " ".join(result.output.split())
    assert "is not a fastdqn checkpoint and was not loaded" in output
    assert "weights_only" not in output and "Traceback" not in output
    assert not marker.exists()


def test_load_checkpoint_of_bytes_that_are_no_pickle_names_the_file_without_torchs_advice(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    path.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(path)
    message = str(caught.value)
    assert message == f"{path} is not a readable fastdqn checkpoint (truncated, corrupted or foreign): Unsupported operand 110"
