"""The hand-written MLP backward agrees with autograd: loss, Q, TD errors and every weight gradient."""

from __future__ import annotations

import pytest
import torch

import fastdqn
from fastdqn.agent import DQNAgent
from fastdqn.backprop import mlp_td_backward
from fastdqn.envs import EnvSpaces

SPACES = EnvSpaces((4,), torch.float32, 3)


def batch_of(n: int, seed: int) -> fastdqn.Batch:
    g = torch.Generator().manual_seed(seed)
    return fastdqn.Batch(
        torch.randn(n, 4, generator=g),
        torch.randint(0, 3, (n,), generator=g),
        torch.randn(n, generator=g) * 3,  # large enough that some Huber errors pass |1|
        torch.randn(n, 4, generator=g),
        torch.rand(n, generator=g) < 0.2,
        torch.rand(n, generator=g) + 0.5,
    )


def agent_for(network: str, loss: str, device: str = "cpu", **overrides: object) -> DQNAgent:
    torch.manual_seed(0)
    cfg = fastdqn.Config(network=network, loss=loss, hidden_dim=32, device=device, compile="off", **overrides)  # type: ignore[arg-type]
    return DQNAgent(cfg, SPACES)


@pytest.mark.parametrize("network", ["mlp", "dueling"])
@pytest.mark.parametrize("loss", ["huber", "mse"])
@pytest.mark.parametrize("weighted", [False, True])
def test_mlp_td_backward_matches_autograd(device: str, network: str, loss: str, weighted: bool) -> None:
    agent = agent_for(network, loss, device)
    assert agent.explicit_backward
    batch = fastdqn.Batch(*(t.to(device) if t is not None else None for t in batch_of(64, seed=1)))
    weights = batch.weights if weighted else None
    td_target = agent.td_target(batch.reward, batch.next_obs, batch.terminated)

    grads = tuple(torch.full_like(g, float("nan")) for g in agent._grads)  # every entry must be overwritten
    loss_value, q_mean, td_error = mlp_td_backward(
        agent._weights, grads, batch.obs, batch.action, td_target, loss, weights, dueling=network == "dueling"
    )

    agent.online.zero_grad()
    ref_loss, ref_q_mean, ref_td_error = agent._td_loss(batch.obs, batch.action, batch.reward, batch.next_obs, batch.terminated, weights)
    ref_loss.backward()
    torch.testing.assert_close(loss_value, ref_loss.detach(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(q_mean, ref_q_mean, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(td_error, ref_td_error, rtol=1e-5, atol=1e-6)
    names = [name for name, _ in agent.q_network.named_parameters()]
    assert len(grads) == len(names) == (8 if network == "dueling" else 6)
    for name, grad, ref in zip(names, grads, agent._grads, strict=True):
        torch.testing.assert_close(grad, ref, rtol=1e-4, atol=1e-6, msg=lambda m, name=name: f"{name}: {m}")


def test_agent_update_explicit_and_autograd_paths_stay_together() -> None:
    """Fifty updates with sync, clipping and PER weights: the two paths end at the same weights."""
    settings = {"target_update_every": 10, "max_grad_norm": 1.0, "learning_rate": 1e-3}
    explicit, autograd = agent_for("dueling", "huber", **settings), agent_for("dueling", "huber", **settings)
    autograd.explicit_backward = False
    for step in range(50):
        batch = batch_of(32, seed=step)
        loss_explicit, loss_autograd = explicit.update(batch)["loss"], autograd.update(batch)["loss"]
        torch.testing.assert_close(loss_explicit, loss_autograd, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(explicit.online.data, autograd.online.data, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(explicit.target.data, autograd.target.data, rtol=1e-4, atol=1e-5)


def test_agent_keeps_autograd_for_image_networks() -> None:
    agent = DQNAgent(fastdqn.Config(network="nature_cnn", compile="off"), EnvSpaces((4, 84, 84), torch.uint8, 6))
    assert not agent.explicit_backward


def test_mlp_td_backward_flattens_multi_dim_uint8_observations() -> None:
    """Byte images fed to an MLP are flattened and cast on the way in; gradients still match autograd."""
    spaces = EnvSpaces((3, 5), torch.uint8, 2)
    torch.manual_seed(0)
    agent = DQNAgent(fastdqn.Config(hidden_dim=16, compile="off"), spaces)
    g = torch.Generator().manual_seed(3)
    obs = torch.randint(0, 256, (32, 3, 5), dtype=torch.uint8, generator=g)
    action = torch.randint(0, 2, (32,), generator=g)
    td_target = torch.randn(32, generator=g)
    grads = tuple(torch.full_like(w, float("nan")) for w in agent._grads)
    loss_value, _, _ = mlp_td_backward(agent._weights, grads, obs, action, td_target, "huber")
    agent.online.zero_grad()
    q = agent.q_network(obs).gather(1, action.unsqueeze(1)).squeeze(1)
    reference = torch.nn.functional.smooth_l1_loss(q, td_target)
    reference.backward()
    torch.testing.assert_close(loss_value, reference.detach())
    for grad, ref in zip(grads, agent._grads, strict=True):
        torch.testing.assert_close(grad, ref, rtol=1e-4, atol=1e-5)


def test_mlp_td_backward_refuses_weights_of_the_wrong_network() -> None:
    agent = agent_for("mlp", "huber")
    batch = batch_of(8, seed=0)
    with pytest.raises(ValueError, match="expected 8 weights"):
        mlp_td_backward(agent._weights, agent._grads, batch.obs, batch.action, batch.reward, "huber", dueling=True)


def test_mlp_scales_pixel_observations_to_unit_range_in_every_path() -> None:
    """uint8 observations reach an MLP as x / 255 (as the Nature CNN and SB3 scale images), in the module, the
    written-out backward and the stacked member forward alike; float observations pass unscaled."""
    from fastdqn.networks import MLP
    from fastdqn.stacked_mlp import stacked_input

    torch.manual_seed(0)
    net = MLP((3, 5), 2, hidden_dim=16)
    pixels = torch.randint(0, 256, (8, 3, 5), dtype=torch.uint8)
    scaled = pixels.float() / 255.0
    torch.testing.assert_close(net(pixels), net(scaled))
    assert float(stacked_input(pixels.unsqueeze(0)).max()) <= 1.0
    torch.testing.assert_close(stacked_input(pixels.unsqueeze(0))[0], scaled.flatten(1))
    raw = torch.randn(8, 3, 5) * 100
    torch.testing.assert_close(stacked_input(raw.unsqueeze(0))[0], raw.flatten(1))
    agent = DQNAgent(fastdqn.Config(hidden_dim=16, compile="off"), EnvSpaces((3, 5), torch.uint8, 2))
    action, td_target = torch.randint(0, 2, (8,)), torch.randn(8)
    grads = tuple(torch.zeros_like(w) for w in agent._grads)
    from_pixels, _, _ = mlp_td_backward(agent._weights, grads, pixels, action, td_target, "huber")
    from_scaled, _, _ = mlp_td_backward(agent._weights, tuple(torch.zeros_like(g) for g in grads), scaled, action, td_target, "huber")
    torch.testing.assert_close(from_pixels, from_scaled)
