"""Groups with frame storage: pixel members (`--replay-storage frames`, ALE ids) train, follow their single runs and resume exactly."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path
from typing import Any

import pytest
import torch
from configs import quiet_config
from test_frame_members import assert_same_storage

from fastdqn.config import Config
from fastdqn.frames import FrameStorage
from fastdqn.group import read_group_configs, train_many
from fastdqn.per import PrioritizedSampler
from fastdqn.train import TrainingInterrupted, train


def pixels(tmp_path: Path, **values: Any) -> Config:
    """framestack_env's tiny (4, 6, 6) uint8 stacks into frame storage; an MLP member, so the stacked update runs."""
    settings: dict[str, Any] = {
        "env_id": "framestack_env:Frames-v0",
        "replay_storage": "frames",
        "num_envs": 2,
        "total_steps": 400,
        "learning_starts": 100,
        "buffer_capacity": 128,  # the rings wrap
        "batch_size": 16,
        "gradient_steps": 1,
        "target_update_every": 16,
        "epsilon_decay_steps": 300,
        "log_every_steps": 100,
    }
    return quiet_config(tmp_path, **{**settings, **values})


def frames_of(result: Any) -> FrameStorage:
    storage = result.buffer.storage
    assert isinstance(storage, FrameStorage)
    return storage


def test_each_member_with_frame_storage_follows_its_single_run(tmp_path: Path) -> None:
    # Stacked matmuls may sum in another order than a single run's, so weights are compared to a
    # tolerance. While the MLP took these pixels as raw 0-255 floats the weights parted by 1e-3 within
    # 50 updates and a greedy action flipped; scaled to [0, 1] they stay equal here over 150.
    base = pixels(tmp_path, total_steps=400, buffer_capacity=48)
    cfgs = [base.replace(seed=1), base.replace(seed=5, learning_rate=1e-3), base.replace(seed=9, gamma=0.9)]
    members = train_many(cfgs)
    for member, cfg in zip(members, cfgs, strict=True):
        single = train(cfg.replace(run_name=f"single-{cfg.seed}"))
        assert member.agent.updates == single.agent.updates >= 150
        assert_same_storage(frames_of(member), frames_of(single))  # the same frames, ids and rows in the same places
        assert member.buffer.writer.size == single.buffer.writer.size == 48
        assert frames_of(member).frames_per_row() < 1.5  # the group passed env ids: rows link to their env's last frames
        for mine, theirs in ((member.agent.online, single.agent.online), (member.agent.target, single.agent.target)):
            torch.testing.assert_close(mine.data, theirs.data, rtol=0, atol=1e-4)
    assert not torch.equal(frames_of(members[0]).frames, frames_of(members[1]).frames)


def test_prioritized_members_with_frame_storage_follow_their_single_runs(tmp_path: Path) -> None:
    """`--per` with frames in a group: each member's sum tree holds the priorities its single run's holds."""
    base = pixels(tmp_path, total_steps=150, buffer_capacity=48, per=True)
    cfgs = [base.replace(seed=1), base.replace(seed=5, learning_rate=1e-3)]
    members = train_many(cfgs)
    for member, cfg in zip(members, cfgs, strict=True):
        single = train(cfg.replace(run_name=f"single-{cfg.seed}"))
        assert member.agent.updates == single.agent.updates >= 25
        assert_same_storage(frames_of(member), frames_of(single))
        mine, theirs = member.buffer.sampler, single.buffer.sampler
        assert isinstance(mine, PrioritizedSampler) and isinstance(theirs, PrioritizedSampler)
        torch.testing.assert_close(mine.sums[0], theirs.sums[0], rtol=1e-5, atol=1e-7)  # leaf priorities, |TD| ** alpha
        assert float(mine.sums[0].std()) > 0  # updated priorities, not the initial ones
        torch.testing.assert_close(member.agent.online.data, single.agent.online.data, rtol=0, atol=1e-4)


def test_an_interrupted_frame_storage_group_resumes_to_the_uninterrupted_result(tmp_path: Path) -> None:
    # PlainFrames-v0 opts in to exact resume (`fastdqn_plain_state`): the resumed envs go on where they were.
    def members(name: str) -> list[Config]:
        base = pixels(
            tmp_path,
            env_id="framestack_env:PlainFrames-v0",
            run_name=name,
            total_steps=600,
            checkpoint_every_steps=200,
            eval_every_steps=200,
            eval_episodes=2,
        )
        return [base.replace(seed=1, stop_at_return=0.0), base.replace(seed=2)]  # member 0 solves at its first evaluation and leaves

    whole = train_many(members("whole"))
    with pytest.raises(TrainingInterrupted):
        train_many(members("cut"), interrupt_at_step=300)
    resumed = train_many(read_group_configs(tmp_path / "cut"), resume=tmp_path / "cut")
    drop = ("wall_s", "sps")
    for mine, theirs in zip(resumed, whole, strict=True):
        assert [{k: v for k, v in r.items() if k not in drop} for r in mine.metrics] == [
            {k: v for k, v in r.items() if k not in drop} for r in theirs.metrics
        ]
        assert torch.equal(mine.agent.online.data, theirs.agent.online.data)
    assert_same_storage(frames_of(resumed[1]), frames_of(whole[1]))  # restored from the checkpoint, then trained on (member 0 had left)
    assert frames_of(resumed[1]).written.item() > frames_of(resumed[1]).frame_capacity  # its frame ring wrapped
    assert resumed[0].solved_at_step == 200 and resumed[1].env_steps == 600
    with (tmp_path / "cut" / "summary.csv").open() as f:
        assert [row["status"] for row in csv.DictReader(f)] == ["solved", "total_steps"]


@pytest.mark.slow  # Nature CNN updates and four Pong runs: about 15 s on a small CPU
@pytest.mark.skipif(importlib.util.find_spec("ale_py") is None, reason="ALE ids need ale-py (the atari extra)")
def test_an_ale_group_trains_each_member_as_its_single_run(tmp_path: Path) -> None:
    base = quiet_config(
        tmp_path, env_id="ALE/Pong-v5", num_envs=2, total_steps=300, learning_starts=200, buffer_capacity=256, batch_size=8,
        gradient_steps=1, train_every=4, target_update_every=32, log_every_steps=100, run_name="pong",
    )  # fmt: skip
    cfgs = [base.replace(seed=1), base.replace(seed=2)]
    members = train_many(cfgs)
    for member, cfg in zip(members, cfgs, strict=True):
        assert (member.run_dir / "metrics.csv").is_file() and (member.run_dir / "final.pt").is_file()
        assert member.run_dir.parent == tmp_path / "pong" and member.env_steps == 300
        storage = frames_of(member)
        assert storage.frames.shape[-2:] == (84, 84) and member.buffer.writer.size > 140
        single = train(cfg.replace(run_name=f"single-{cfg.seed}"))
        assert member.agent.updates == single.agent.updates > 0
        assert_same_storage(storage, frames_of(single))
        apart = (member.agent.online.data - single.agent.online.data).abs()  # functorch's grads sum in another order
        assert float(apart.max()) < 10 * cfg.learning_rate and float((apart > 1e-5).float().mean()) < 1e-2
    assert not torch.equal(frames_of(members[0]).ids, frames_of(members[1]).ids) or not torch.equal(
        frames_of(members[0]).frames, frames_of(members[1]).frames
    )
