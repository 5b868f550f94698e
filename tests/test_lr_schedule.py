"""`learning_rate_end`: Adam's step size on a line from `learning_rate` at env step 0 to it at total_steps,
set once per update round, for a single run and for each member of a group, and exact across resume."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from configs import quiet_config
from golden.make_golden import golden_config

import fastdqn
from fastdqn import engine
from fastdqn.config import Config
from fastdqn.engine import TrainingInterrupted
from fastdqn.errors import ConfigError
from fastdqn.group import read_group_configs, train_many
from fastdqn.learners import SingleLearner
from fastdqn.optim import Adam
from fastdqn.schedules import learning_rate_at


def test_learning_rate_at_runs_from_env_step_0_to_total_steps_and_stays() -> None:
    cfg = Config(learning_rate=1e-3, learning_rate_end=1e-4, total_steps=1000, learning_starts=100)
    assert learning_rate_at(cfg, 0) == 1e-3
    assert learning_rate_at(cfg, 500) == pytest.approx(5.5e-4, rel=1e-12)
    assert learning_rate_at(cfg, 1000) == pytest.approx(1e-4, rel=1e-12)
    assert learning_rate_at(cfg, 5000) == pytest.approx(1e-4, rel=1e-12)
    assert learning_rate_at(cfg.replace(learning_rate_end=None), 700) == 1e-3


def test_learning_rate_end_below_zero_is_refused_in_one_line() -> None:
    with pytest.raises(ConfigError, match=r"learning_rate_end=-1.0 must be a finite number >= 0 .* or none; pass --learning-rate-end X"):
        Config(learning_rate_end=-1.0)


@pytest.mark.parametrize("masked", [False, True])  # True: the (K, P) masked step CUDA takes, forced on the cpu
@pytest.mark.parametrize("rates", [[3e-3, 3e-3], [3e-3, 1e-4]])  # one rate: the fused kernel; two: a fused kernel per member
def test_adam_steps_with_a_changed_rate_as_torch_adam_does(rates: list[float], masked: bool) -> None:
    torch.manual_seed(0)
    nets = [torch.nn.Linear(5, 3) for _ in rates]
    flat = torch.stack([torch.cat([p.detach().reshape(-1) for p in n.parameters()]) for n in nets])  # (K, P)
    grad = torch.zeros_like(flat)
    single_params, single_grad = flat[1].clone(), torch.zeros_like(flat[1])
    stacked, single = Adam(flat, grad, lr=1e-2), Adam(single_params, single_grad, lr=1e-2)
    stacked.fusable = not masked
    theirs = [torch.optim.Adam(n.parameters(), lr=1e-2) for n in nets]
    for step in range(12):
        scale = 1.0 - step / 12
        now = [r * scale for r in rates]
        stacked.set_lr(now)
        single.set_lr(now[1:])
        assert stacked.one_rate == (len(set(now)) == 1)
        for k, (net, optimizer) in enumerate(zip(nets, theirs, strict=True)):
            for group in optimizer.param_groups:
                group["lr"] = now[k]
            x = torch.randn(8, 5)
            optimizer.zero_grad()
            net(x).square().sum().backward()
            grad[k] = torch.cat([p.grad.reshape(-1) for p in net.parameters() if p.grad is not None])
            optimizer.step()
        single_grad.copy_(grad[1])
        stacked.step()
        single.step()
    for k, net in enumerate(nets):
        torch.testing.assert_close(flat[k], torch.cat([p.detach().reshape(-1) for p in net.parameters()]), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(single_params, flat[1], rtol=1e-5, atol=1e-6)
    if not masked:  # the member's own fused kernel: its single run's arithmetic, bit for bit
        assert torch.equal(single_params, flat[1])


def _record_rates(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, list[float]]]:
    """(env step, each member's Adam rate) after every update round."""
    seen: list[tuple[int, list[float]]] = []
    original = engine.learn

    def recording(cfgs: Any, learner: Any, replay: Any, active: np.ndarray, env_steps: int) -> Any:
        stats = original(cfgs, learner, replay, active, env_steps)
        if isinstance(learner, SingleLearner):
            seen.append((env_steps, [learner.agent.optimizer.lr]))
        else:
            seen.append((env_steps, learner.optimizer.lrs[:, 0].tolist()))
            assert [a.optimizer.lr for a in learner.agents] == pytest.approx(seen[-1][1], rel=1e-6)
        return stats

    monkeypatch.setattr(engine, "learn", recording)
    return seen


def test_a_single_run_steps_with_the_scheduled_rate_at_each_env_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = quiet_config(tmp_path, num_envs=4, total_steps=800, learning_starts=200, batch_size=16, learning_rate_end=0.0)
    seen = _record_rates(monkeypatch)
    fastdqn.train(cfg)
    assert len(seen) == (800 - 200) // 4 + 1
    for env_steps, (rate,) in seen:
        assert rate == learning_rate_at(cfg, env_steps)
    assert seen[-1] == (800, [0.0])


def test_group_members_step_with_their_own_scheduled_rates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base = quiet_config(tmp_path, num_envs=4, total_steps=800, learning_starts=200, batch_size=16)
    cfgs = [
        base.replace(seed=1, learning_rate_end=0.0),
        base.replace(seed=2),
        base.replace(seed=3, learning_rate=1e-3, learning_rate_end=1e-4),
    ]
    seen = _record_rates(monkeypatch)
    train_many(cfgs)
    assert len(seen) == (800 - 200) // 4 + 1
    for env_steps, rates in seen:
        assert rates == pytest.approx([learning_rate_at(c, env_steps) for c in cfgs], rel=1e-6)  # held as float32


@pytest.mark.parametrize(
    ("members", "steps"),
    [
        ([{"seed": 1, "learning_rate_end": 0.0}, {"seed": 2, "learning_rate_end": 0.0}], 2_000),  # one rate: the fused Adam
        # rates that differ: one fused kernel per member on a CPU, each member's single-run arithmetic
        ([{"seed": 1, "learning_rate_end": 0.0}, {"seed": 2}, {"seed": 3, "learning_rate": 2e-3, "learning_rate_end": 1e-4}], 2_000),
    ],
)
def test_group_members_with_a_schedule_match_their_single_runs(members: list[dict[str, Any]], steps: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        group = train_many([golden_config(tmp, total_steps=steps, **m) for m in members])
        singles = [fastdqn.train(golden_config(tmp, total_steps=steps, **m)) for m in members]
    for member, single in zip(group, singles, strict=True):
        assert member.agent.updates == single.agent.updates > 0
        torch.testing.assert_close(member.agent.online.data, single.agent.online.data, rtol=0, atol=1e-5)
        torch.testing.assert_close(member.agent.target.data, single.agent.target.data, rtol=0, atol=1e-5)
        assert member.agent.optimizer.lr == pytest.approx(single.agent.optimizer.lr, rel=1e-6)


def test_the_schedule_changes_the_run_and_none_keeps_the_constant_rate() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        scheduled = fastdqn.train(golden_config(tmp, learning_rate_end=0.0))
        constant = fastdqn.train(golden_config(tmp))
    assert not torch.equal(scheduled.agent.online.data, constant.agent.online.data)
    assert constant.agent.optimizer.lr == constant.agent.cfg.learning_rate
    assert scheduled.agent.optimizer.lr == learning_rate_at(scheduled.agent.cfg, 2_000)


def _small(out: Path, **values: Any) -> Config:
    settings: dict[str, Any] = {"num_envs": 4, "total_steps": 1200, "learning_starts": 200, "buffer_capacity": 400, "batch_size": 32}
    settings |= {"target_update_every": 16, "epsilon_decay_steps": 800, "log_every_steps": 200, "checkpoint_every_steps": 400}
    settings |= {"env_backend": "torch", "learning_rate_end": 0.0}
    return quiet_config(out, **{**settings, **values})


def test_a_single_run_with_the_schedule_resumes_exactly(tmp_path: Path) -> None:
    whole = fastdqn.train(_small(tmp_path, run_name="whole"))
    with pytest.raises(TrainingInterrupted):
        fastdqn.train(_small(tmp_path, run_name="cut"), interrupt_at_step=600)
    resumed = fastdqn.train(_small(tmp_path, run_name="cut"), resume=tmp_path / "cut")
    assert torch.equal(resumed.agent.online.data, whole.agent.online.data)
    assert torch.equal(resumed.agent.target.data, whole.agent.target.data)
    assert [r["loss"] for r in resumed.metrics] == [r["loss"] for r in whole.metrics]


def test_group_members_with_their_schedules_resume_exactly(tmp_path: Path) -> None:
    def members(name: str) -> list[Config]:
        base = _small(tmp_path, run_name=name)
        return [
            base.replace(seed=1),
            base.replace(seed=2, learning_rate_end=None),
            base.replace(seed=3, learning_rate=1e-3, learning_rate_end=1e-4),
        ]

    whole = train_many(members("whole"))
    with pytest.raises(TrainingInterrupted):
        train_many(members("cut"), interrupt_at_step=600)
    resumed = train_many(read_group_configs(tmp_path / "cut"), resume=tmp_path / "cut")
    for mine, theirs in zip(resumed, whole, strict=True):
        assert torch.equal(mine.agent.online.data, theirs.agent.online.data)
        assert [r["loss"] for r in mine.metrics] == [r["loss"] for r in theirs.metrics]


@pytest.mark.ray
def test_a_run_fed_by_ray_actors_steps_with_the_scheduled_rate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ray = pytest.importorskip("ray")
    from fastdqn.actor_source import train_distributed

    cfg = quiet_config(tmp_path, actors=2, num_envs=4, chunk_steps=128, total_steps=1_024, learning_starts=256, batch_size=32)
    cfg = cfg.replace(gradient_steps=1, buffer_capacity=4_096, run_name="run", learning_rate_end=1e-5)
    seen = _record_rates(monkeypatch)
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=150 * 2**20, log_to_driver=False, logging_level="WARNING")
    try:
        train_distributed(cfg)
    finally:
        ray.shutdown()
    assert len(seen) == 7 * 32  # 32 rounds per 128-step chunk from the one that brings 256 steps in
    for env_steps, (rate,) in seen:
        assert rate == learning_rate_at(cfg, env_steps)
    assert seen[-1][0] == 1_024 and seen[-1][1] == pytest.approx([1e-5], rel=1e-9)
