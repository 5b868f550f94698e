from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

import fastdqn
from fastdqn.agent import DQNAgent
from fastdqn.envs import EnvSpaces
from fastdqn.networks import MLP
from fastdqn.optim import Adam, FlatParameters

SPACES = EnvSpaces((4,), torch.float32, 3)


def make_agent(device: str = "cpu", **overrides: object) -> DQNAgent:
    torch.manual_seed(0)
    cfg = fastdqn.Config(device=device, **overrides)  # type: ignore[arg-type]
    return DQNAgent(cfg, SPACES)


def random_batch(n: int = 64, device: str = "cpu", seed: int = 0) -> fastdqn.Batch:
    g = torch.Generator().manual_seed(seed)
    batch = fastdqn.Batch(
        torch.randn(n, 4, generator=g),
        torch.randint(0, 3, (n,), generator=g),
        torch.randn(n, generator=g),
        torch.randn(n, 4, generator=g),
        torch.rand(n, generator=g) < 0.2,
    )
    return fastdqn.Batch(*(t.to(device) if t is not None else None for t in batch))


def test_target_network_is_a_separate_copy(device: str) -> None:
    agent = make_agent(device)
    assert agent.target_network is not agent.q_network
    for p, t in zip(agent.q_network.parameters(), agent.target_network.parameters(), strict=True):
        assert p.data_ptr() != t.data_ptr()
        assert torch.equal(p, t)


def test_target_network_is_unchanged_by_update_until_synced(device: str) -> None:
    agent = make_agent(device, target_update_every=5)
    before = agent.target.data.clone()
    for i in range(4):
        agent.update(random_batch(device=device, seed=i))
    assert torch.equal(agent.target.data, before)
    assert not torch.equal(agent.online.data, before)
    agent.update(random_batch(device=device, seed=4))  # the 5th gradient step syncs
    assert torch.equal(agent.target.data, agent.online.data)


def test_polyak_sync_moves_target_by_tau() -> None:
    agent = make_agent(tau=0.25, target_update_every=1)
    target_before = agent.target.data.clone()
    agent.update(random_batch())
    assert torch.allclose(agent.target.data, target_before + 0.25 * (agent.online.data - target_before), atol=1e-7)


@pytest.mark.parametrize(
    ("double_dqn", "loss", "max_grad_norm", "grad_clip_value"),
    [(True, "huber", 10.0, 0.0), (False, "mse", 0.0, 1.0), (True, "mse", 0.5, 0.0)],
)
def test_update_matches_a_plain_torch_reference(double_dqn: bool, loss: str, max_grad_norm: float, grad_clip_value: float) -> None:
    agent = make_agent(
        double_dqn=double_dqn, loss=loss, max_grad_norm=max_grad_norm, grad_clip_value=grad_clip_value, target_update_every=3
    )
    cfg = agent.cfg
    online, target = MLP((4,), 3, cfg.hidden_dim), MLP((4,), 3, cfg.hidden_dim)
    online.load_state_dict(agent.q_network.state_dict())
    target.load_state_dict(agent.target_network.state_dict())
    optimizer = torch.optim.Adam(online.parameters(), lr=cfg.learning_rate, eps=cfg.adam_eps)
    for step in range(10):
        b = random_batch(seed=step)
        stats = agent.update(b)
        with torch.no_grad():
            next_q = target(b.next_obs)
            next_value = next_q.gather(1, online(b.next_obs).argmax(1, keepdim=True)).squeeze(1) if double_dqn else next_q.max(1).values
            y = b.reward + cfg.gamma * next_value * (~b.terminated).float()
        q = online(b.obs).gather(1, b.action.unsqueeze(1)).squeeze(1)
        ref_loss = F.smooth_l1_loss(q, y) if loss == "huber" else F.mse_loss(q, y)
        optimizer.zero_grad()
        ref_loss.backward()
        if grad_clip_value:
            torch.nn.utils.clip_grad_value_(online.parameters(), grad_clip_value)
        if max_grad_norm:
            torch.nn.utils.clip_grad_norm_(online.parameters(), max_grad_norm)
        optimizer.step()
        if (step + 1) % 3 == 0:
            target.load_state_dict(online.state_dict())
        assert torch.allclose(stats["loss"], ref_loss.detach(), rtol=1e-5, atol=1e-6)
    for name, value in online.state_dict().items():
        assert torch.allclose(agent.q_network.state_dict()[name], value, atol=1e-6), name


def test_flat_adam_matches_torch_adam() -> None:
    torch.manual_seed(1)
    net = torch.nn.Linear(5, 3)
    ref = copy.deepcopy(net)
    flat = FlatParameters(net)
    assert flat.grad is not None
    ours = Adam(flat.data, flat.grad, lr=0.01)
    theirs = torch.optim.Adam(ref.parameters(), lr=0.01)
    for _ in range(20):
        x = torch.randn(8, 5)
        flat.zero_grad()
        net(x).square().sum().backward()
        ours.step()
        theirs.zero_grad()
        ref(x).square().sum().backward()
        theirs.step()
    assert torch.allclose(net.weight, ref.weight, atol=1e-6) and torch.allclose(net.bias, ref.bias, atol=1e-6)


def test_act_at_epsilon_zero_is_greedy(device: str) -> None:
    agent = make_agent(device)
    obs = torch.randn(512, 4, device=device)
    assert torch.equal(agent.act(obs, 0.0), agent.q_values(obs).argmax(1))


def test_act_at_epsilon_one_is_uniform_per_env(device: str) -> None:
    agent = make_agent(device)
    obs = torch.zeros(30_000, 4, device=device)  # identical observations: a greedy policy would pick one action
    counts = torch.bincount(agent.act(obs, 1.0), minlength=3).float()
    expected = obs.shape[0] / 3
    chi_square = ((counts - expected) ** 2 / expected).sum().item()
    assert chi_square < 13.8  # p = 0.001 for 2 degrees of freedom


def test_act_mixes_per_env_at_intermediate_epsilon() -> None:
    agent = make_agent()
    obs = torch.zeros(20_000, 4)
    greedy = agent.act(obs, 0.0)[0]
    share_greedy = (agent.act(obs, 0.3) == greedy).float().mean().item()
    assert abs(share_greedy - (0.7 + 0.3 / 3)) < 0.015


def test_update_returns_device_tensors_without_reading_them(device: str) -> None:
    agent = make_agent(device)
    stats = agent.update(random_batch(device=device))
    assert set(stats) == {"loss", "q_mean", "td_error"}
    assert stats["loss"].shape == () and stats["td_error"].shape == (64,)
    assert all(v.device.type == device for v in stats.values())


def test_update_accepts_a_tensordict_from_the_buffer() -> None:
    agent = make_agent()
    buffer = fastdqn.ReplayBuffer.create(100, (4,))
    b = random_batch()
    buffer.extend(b._asdict())
    stats = agent.update(buffer.sample(32))
    assert torch.isfinite(stats["loss"])


def test_save_and_load_round_trip(tmp_path: object) -> None:
    agent = make_agent()
    for i in range(3):
        agent.update(random_batch(seed=i))
    path = agent.save(tmp_path / "agent.pt")  # type: ignore[operator]
    loaded = DQNAgent.load(path)
    obs = torch.randn(16, 4)
    assert torch.equal(loaded.q_values(obs), agent.q_values(obs))
    assert torch.equal(loaded.target.data, agent.target.data)
    assert loaded.updates == 3


@pytest.mark.slow
def test_compiled_and_eager_updates_agree() -> None:
    eager, compiled = make_agent(compile="off"), make_agent(compile="on")
    assert compiled.compiled and not eager.compiled
    b = random_batch(seed=0)
    assert torch.allclose(eager.update(b)["loss"], compiled.update(b)["loss"], rtol=1e-4, atol=1e-6)
    from torch._dynamo import config as dynamo_config

    with dynamo_config.patch(error_on_recompile=True):  # fixed shapes: warm-up compiles once
        for step in range(1, 6):
            b = random_batch(seed=step)
            loss_eager, loss_compiled = eager.update(b)["loss"], compiled.update(b)["loss"]
            assert torch.allclose(loss_eager, loss_compiled, rtol=1e-4, atol=1e-6)
    assert torch.allclose(eager.online.data, compiled.online.data, atol=1e-5)


def test_agent_round_trips_through_torch_save_and_the_copy_acts_on_its_own_live_weights() -> None:
    import io

    agent = make_agent()
    obs = torch.randn(8, 4)
    file = io.BytesIO()
    torch.save(agent, file)  # torch.save keeps the views into the flat parameters shared; plain pickle does not
    file.seek(0)
    clone = torch.load(file, weights_only=False)
    torch.testing.assert_close(clone.q_values(obs), agent.q_values(obs))
    for _ in range(3):
        clone.update(random_batch(32))
    assert not torch.equal(clone.q_values(obs), agent.q_values(obs))  # the copy's acting follows the copy's weights
    torch.testing.assert_close(clone.q_values(obs), clone.q_network(obs).detach())
