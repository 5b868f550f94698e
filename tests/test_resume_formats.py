"""Checkpoints written before the shared engine (a run's sectioned payload, a group's `fastdqn-group-1`)
still resume, exactly; a format this fastdqn does not know is refused in one line naming it.

tests/format1/ holds a run and a group (native CartPole, PER, n-step 3) interrupted at env step 200
by fastdqn at commit ab33be0, the last one before checkpoint format 2 (`make_format1.py` wrote them).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

import fastdqn
from fastdqn.checkpoint import CheckpointError
from fastdqn.config import Config
from fastdqn.group import read_group_configs, train_many
from fastdqn.resume import load_resumable

FORMAT1 = Path(__file__).with_name("format1")


def copied(tmp_path: Path, name: str) -> Path:
    return Path(shutil.copytree(FORMAT1 / name, tmp_path / "old" / name))


def weights(result: fastdqn.RunResult) -> tuple[torch.Tensor, torch.Tensor]:
    return result.agent.online.data, result.agent.target.data


def test_a_run_checkpoint_of_format_1_resumes_to_the_uninterrupted_run(tmp_path: Path) -> None:
    run = copied(tmp_path, "run")
    cfg = Config.load(run / "config.json")
    resumed = fastdqn.train(cfg, resume=run)
    whole = fastdqn.train(cfg.replace(out_dir=str(tmp_path / "new")))
    assert resumed.agent.updates == whole.agent.updates > 0
    for mine, theirs in zip(weights(resumed), weights(whole), strict=True):
        assert torch.equal(mine, theirs)
    assert (run / "metrics.csv").read_text().count("\n") == (whole.run_dir / "metrics.csv").read_text().count("\n")
    assert load_resumable(max((run / "checkpoints").glob("step-*.pt")))["format"] == "fastdqn-checkpoint-2"


def test_a_group_checkpoint_of_format_1_resumes_to_the_uninterrupted_group(tmp_path: Path) -> None:
    group = copied(tmp_path, "group")
    resumed = train_many(read_group_configs(group), resume=group)
    whole = train_many([c.replace(out_dir=str(tmp_path / "new")) for c in read_group_configs(group)])
    for mine, theirs in zip(resumed, whole, strict=True):
        assert mine.agent.updates == theirs.agent.updates > 0
        for a, b in zip(weights(mine), weights(theirs), strict=True):
            assert torch.equal(a, b)


def test_a_checkpoint_of_an_unknown_format_is_refused_naming_it(tmp_path: Path) -> None:
    run = copied(tmp_path, "run")
    path = next((run / "checkpoints").glob("step-*.pt"))
    payload = torch.load(path, weights_only=True)
    torch.save({**payload, "format": "fastdqn-checkpoint-9"}, path)
    with pytest.raises(CheckpointError, match="written in checkpoint format 'fastdqn-checkpoint-9'"):
        load_resumable(path)
