"""The stacked paths on every device: K members' update, replay and whole group run on cpu and (marked `cuda`) on a GPU.

Each test runs on the cpu here and on cuda where `bash bench/cuda_check.sh` finds a GPU (the
`device` fixture marks the cuda row), so the CUDA lines of the member axis keep a test that says
what they must do: update as single agents do, sample only a member's own rows, train a group whose
members follow their single runs, and (CUDA only) step a group with no host sync between log rows.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import fastdqn
from fastdqn.agent import DQNAgent
from fastdqn.buffer import MemberBatch, ReplayBuffer
from fastdqn.config import Config
from fastdqn.envs import EnvSpaces
from fastdqn.members import MemberAgents
from tests.configs import quiet_config

SPACES = EnvSpaces((4,), torch.float32, 2)
SEEDS = (3, 5, 7)


def random_rows(k: int, batch_size: int, device: str, seed: int, weights: bool) -> MemberBatch:
    g = torch.Generator().manual_seed(seed)
    rows = {
        "obs": torch.randn(k, batch_size, 4, generator=g),
        "action": torch.randint(0, 2, (k, batch_size), generator=g),
        "reward": torch.randn(k, batch_size, generator=g),
        "next_obs": torch.randn(k, batch_size, 4, generator=g),
        "terminated": torch.rand(k, batch_size, generator=g) < 0.2,
    }
    if weights:
        rows["weights"] = torch.rand(k, batch_size, generator=g) + 0.5
    return MemberBatch(**{name: value.to(device) for name, value in rows.items()})


@pytest.mark.parametrize("network", ["mlp", "dueling"])
@pytest.mark.parametrize("per", [False, True])
def test_stacked_update_follows_each_members_single_agent(device: str, network: str, per: bool) -> None:
    cfgs = [Config(device=device, seed=s, network=network, compile="off", target_update_every=2, max_grad_norm=1.0) for s in SEEDS]
    singles = []
    for cfg in cfgs:
        torch.manual_seed(cfg.seed)  # what a run's seed_everything leaves for the agent's init
        singles.append(DQNAgent(cfg, SPACES, device))
    members = MemberAgents(cfgs, SPACES, torch.device(device))
    active = np.ones(len(cfgs), dtype=bool)
    for step in range(6):
        batch = random_rows(len(cfgs), 32, device, step, per)
        stats = members.update(batch, active)
        assert stats["loss"].device.type == torch.device(device).type and stats["td_error"].shape == (len(cfgs), 32)
        for k, agent in enumerate(singles):
            rows = {name: getattr(batch, name)[k] for name in ("obs", "action", "reward", "next_obs", "terminated")}
            if per:
                rows["weights"] = batch.weights[k]
            single = agent.update(rows)
            assert torch.allclose(stats["loss"][k], single["loss"], rtol=1e-4, atol=1e-6)
    for k, agent in enumerate(singles):
        assert torch.allclose(members.online[k], agent.online.data, atol=1e-5), k
        assert torch.allclose(members.target[k], agent.target.data, atol=1e-5), k


PIXELS = EnvSpaces((4, 84, 84), torch.uint8, 3)


def pixel_rows(k: int, batch_size: int, device: str, seed: int, weights: bool) -> MemberBatch:
    g = torch.Generator().manual_seed(seed)
    rows = {
        "obs": torch.randint(0, 256, (k, batch_size, 4, 84, 84), generator=g, dtype=torch.uint8),
        "action": torch.randint(0, 3, (k, batch_size), generator=g),
        "reward": torch.randn(k, batch_size, generator=g),
        "next_obs": torch.randint(0, 256, (k, batch_size, 4, 84, 84), generator=g, dtype=torch.uint8),
        "terminated": torch.rand(k, batch_size, generator=g) < 0.2,
    }
    if weights:
        rows["weights"] = torch.rand(k, batch_size, generator=g) + 0.5
    return MemberBatch(**{name: value.to(device) for name, value in rows.items()})


@pytest.mark.parametrize("vectorize", [True, False])
@pytest.mark.parametrize(("dueling", "per", "double_dqn"), [(False, False, True), (True, True, False)])
def test_cnn_members_follow_each_members_single_agent(device: str, dueling: bool, per: bool, double_dqn: bool, vectorize: bool) -> None:
    """Nature CNN members: one vmapped step (CUDA, compiled), or the same function member by member (eager CPU)."""
    network = "dueling" if dueling else "nature_cnn"  # image observations get the Nature CNN, dueling if asked
    base = Config(device=device, network=network, compile="off", target_update_every=2, max_grad_norm=10.0, double_dqn=double_dqn)
    cfgs = [base.replace(seed=s, learning_rate=1e-4 * (i + 1)) for i, s in enumerate(SEEDS[:2])]
    singles = []
    for cfg in cfgs:
        torch.manual_seed(cfg.seed)
        singles.append(DQNAgent(cfg, PIXELS, device))
    members = MemberAgents(cfgs, PIXELS, torch.device(device))
    assert members.net is not None and members.net.vectorize == (device == "cuda"), network
    members.net.vectorize = vectorize
    active = np.ones(len(cfgs), dtype=bool)
    for step in range(3):
        batch = pixel_rows(len(cfgs), 8, device, step, per)
        stats = members.update(batch, active)
        for k, agent in enumerate(singles):
            rows = {name: getattr(batch, name)[k] for name in ("obs", "action", "reward", "next_obs", "terminated")}
            if per:
                rows["weights"] = batch.weights[k]
            single = agent.update(rows)
            assert torch.allclose(stats["loss"][k], single["loss"], rtol=1e-4, atol=1e-6)
            assert torch.allclose(stats["td_error"][k], single["td_error"], rtol=1e-4, atol=1e-5)
    obs = pixel_rows(len(cfgs), 5, device, 9, False).obs
    assert torch.equal(members.act(obs, [0.0, 0.0]), torch.stack([a.act(obs[k], 0.0) for k, a in enumerate(singles)]))
    for k, agent in enumerate(singles):
        # Adam divides by the root of tiny second moments: a weight whose gradient is ~0 may move by
        # up to its lr on a float-order difference, so a few may part by 1e-5, the rest agree tightly
        apart = (members.online[k] - agent.online.data).abs()
        assert float(apart.max()) < 1e-4 and int((apart > 1e-6).sum()) < 10, k
        assert torch.allclose(members.target[k], agent.target.data, atol=1e-4), k


@pytest.mark.parametrize("per", [False, True])
def test_member_replay_samples_each_members_own_rows_on_the_device(device: str, per: bool) -> None:
    cfgs = [Config(device=device, seed=s, per=per, buffer_capacity=64) for s in SEEDS]
    replay = ReplayBuffer.for_members(cfgs, (4,), torch.float32, torch.device(device))
    k, n = len(cfgs), 40
    member = torch.arange(k).repeat_interleave(n)  # rows of member m carry m in every obs feature
    rows = {
        "obs": member.float().unsqueeze(1).expand(-1, 4).contiguous(),
        "action": torch.zeros(k * n, dtype=torch.int64),
        "reward": member.float(),
        "next_obs": member.float().unsqueeze(1).expand(-1, 4).contiguous(),
        "terminated": torch.zeros(k * n, dtype=torch.bool),
    }
    replay.extend({name: value.to(device) for name, value in rows.items()}, member.numpy())
    assert list(replay.sizes) == [n] * k
    active = np.ones(k, dtype=bool)
    batch = replay.sample_members(16, active)
    assert batch.obs.shape == (k, 16, 4) and batch.obs.device.type == torch.device(device).type
    expected = torch.arange(k, device=batch.obs.device).float().view(k, 1, 1).expand(k, 16, 4)
    assert torch.equal(batch.obs, expected) and torch.equal(batch.reward, expected[:, :, 0])
    if per:
        assert batch.weights is not None and batch.weights.shape == (k, 16) and bool((batch.weights > 0).all())
        replay.update_member_priorities(batch, torch.ones(k, 16, device=batch.obs.device), active)


def test_a_group_on_the_device_follows_its_members_single_runs(device: str, tmp_path: Path) -> None:
    values = {"device": device, "env_backend": "torch", "num_envs": 8, "total_steps": 640, "learning_starts": 320}
    values |= {"compile": "off", "fuse_step": "off", "eval_every_steps": 0, "stop_at_return": None, "save_plot": False}
    group = fastdqn.train_many([quiet_config(tmp_path / "group", seed=s, **values) for s in SEEDS[:2]])
    for seed, member in zip(SEEDS[:2], group, strict=True):
        single = fastdqn.train(quiet_config(tmp_path / f"single{seed}", seed=seed, **values))
        assert member.agent.updates == single.agent.updates > 0
        # ~40 updates: stacked matmuls sum in another order, so weights agree to float tolerance (see test_group's EARLY)
        assert torch.allclose(member.agent.online.data, single.agent.online.data, atol=1e-4), seed
        assert (member.run_dir / "episodes.csv").read_text() == (single.run_dir / "episodes.csv").read_text()
        for name in ("obs", "action", "reward", "terminated"):  # the same env starts, coins and actions: the same rows
            assert torch.equal(member.buffer.storage.fields[name][:640], single.buffer.storage.fields[name][:640]), name


@pytest.mark.slow  # compiling the stacked update takes ~10 s on a small CPU
@pytest.mark.parametrize("network", ["mlp", "dueling"])
def test_a_compiled_stacked_update_equals_the_eager_one(device: str, network: str) -> None:
    """`--compile on` with `--seeds`: the stacked TD step compiled as one function, PER weights and n-step discounts included."""
    cfgs = [Config(device=device, seed=s, network=network, target_update_every=2, max_grad_norm=1.0) for s in SEEDS]
    eager = MemberAgents([c.replace(compile="off") for c in cfgs], SPACES, torch.device(device))
    compiled = MemberAgents([c.replace(compile="on") for c in cfgs], SPACES, torch.device(device))
    assert eager.step is None and compiled.step is not None
    active = np.ones(len(cfgs), dtype=bool)
    for step in range(6):
        batch = random_rows(len(cfgs), 32, device, step, weights=step % 2 == 1)
        if step >= 4:  # n-step rows: their own discount in place of gamma
            batch = batch._replace(discount=torch.full_like(batch.reward, 0.9**3))
        a, b = eager.update(batch, active), compiled.update(batch, active)
        assert torch.allclose(a["loss"], b["loss"], rtol=1e-4, atol=1e-6) and torch.allclose(a["td_error"], b["td_error"], atol=1e-4)
    assert torch.allclose(eager.online, compiled.online, atol=1e-5) and torch.allclose(eager.target, compiled.target, atol=1e-5)
    keep = [0, 2]  # a member leaves: the compiled step recompiles for K = 2 and goes on
    eager.keep(keep)
    compiled.keep(keep)
    batch = random_rows(2, 32, device, 9, weights=False)
    eager.update(batch, np.ones(2, dtype=bool))
    compiled.update(batch, np.ones(2, dtype=bool))
    assert torch.allclose(eager.online, compiled.online, atol=1e-5)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_a_native_group_steps_on_cuda_with_no_host_sync_between_log_rows() -> None:
    """K = 3 members: stacked act, K x N native env step, member-tagged replay write, stacked sample and update."""
    from fastdqn.episodes import EpisodeTracker
    from fastdqn.member_envs import MemberEnvs
    from fastdqn.sources import MemberSource

    device = torch.device("cuda")
    cfgs = [Config(device="cuda", seed=s, env_backend="torch", num_envs=16, compile="off", buffer_capacity=4_096) for s in SEEDS]
    envs = MemberEnvs(cfgs, 16, device)
    learner = MemberAgents(cfgs, envs.spaces, device)
    replay = ReplayBuffer.for_members(cfgs, envs.spaces.obs_shape, envs.spaces.obs_dtype, device)
    trackers = [EpisodeTracker(16, device, log_steps=1_000) for _ in cfgs]
    source = MemberSource(learner, envs, replay, None, trackers, train_every=1)
    source.reset([c.seed for c in cfgs])
    active = np.ones(len(cfgs), dtype=bool)
    for step in range(8):  # warm-up: lazy CUDA initialisation may synchronise
        source.step([1.0] * len(cfgs), step * 16)
    learner.update(replay.sample_members(64, active), active)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for step in range(8, 200):
            source.step([0.5] * len(cfgs), step * 16)
            learner.update(replay.sample_members(64, active), active)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert all(t.logged == 200 for t in trackers)


@pytest.mark.slow  # compiling the vmapped CNN step takes a while on a small CPU
def test_a_compiled_vmapped_cnn_step_equals_the_eager_one(device: str) -> None:
    """`--compile on` with Nature CNN members: the vmapped TD step compiled as one function."""
    cfgs = [Config(device=device, seed=s, network="nature_cnn", target_update_every=2) for s in SEEDS[:2]]
    eager = MemberAgents([c.replace(compile="off") for c in cfgs], PIXELS, torch.device(device))
    compiled = MemberAgents([c.replace(compile="on") for c in cfgs], PIXELS, torch.device(device))
    active = np.ones(len(cfgs), dtype=bool)
    for step in range(3):
        batch = pixel_rows(len(cfgs), 8, device, step, weights=step == 1)
        a, b = eager.update(batch, active), compiled.update(batch, active)
        assert torch.allclose(a["loss"], b["loss"], rtol=1e-4, atol=1e-6)
        assert torch.allclose(a["td_error"], b["td_error"], rtol=1e-4, atol=1e-5)
        if step == 0:  # the same weights in: the same gradient out (later, Adam magnifies float-order differences of ~0 gradients)
            assert torch.allclose(eager.grad, compiled.grad, atol=1e-6)
