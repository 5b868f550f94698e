"""Q-networks: the tutorial's MLP, a dueling variant and the Nature CNN. Input (B, *obs_shape), output (B, n_actions)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class MLP(nn.Module):
    """`obs_dim -> hidden -> hidden -> n_actions` with ReLU, as in the tutorial.

    The forward calls `F.linear` on the layers' weights instead of calling each layer: on a small
    CPU a module call costs as much as the matmul inside it, and acting and the update run this
    forward three times per gradient step.
    """

    def __init__(self, obs_shape: tuple[int, ...], n_actions: int, hidden_dim: int = 64):
        super().__init__()
        self.hidden1 = nn.Linear(math.prod(obs_shape), hidden_dim)
        self.hidden2 = nn.Linear(hidden_dim, hidden_dim)
        self.head = nn.Linear(hidden_dim, n_actions)

    def features(self, obs: Tensor) -> Tensor:
        x = obs.flatten(1).float()  # (B, obs_dim)
        x = F.relu(F.linear(x, self.hidden1.weight, self.hidden1.bias))
        return F.relu(F.linear(x, self.hidden2.weight, self.hidden2.bias))  # (B, H)

    def forward(self, obs: Tensor) -> Tensor:
        return F.linear(self.features(obs), self.head.weight, self.head.bias)  # (B, A)


class DuelingMLP(MLP):
    """The MLP trunk, then `Q = V + A - mean(A)` (Wang et al. 2016); `head` is the advantage stream."""

    def __init__(self, obs_shape: tuple[int, ...], n_actions: int, hidden_dim: int = 64):
        super().__init__(obs_shape, n_actions, hidden_dim)
        self.value = nn.Linear(hidden_dim, 1)

    def forward(self, obs: Tensor) -> Tensor:
        features = self.features(obs)  # (B, H)
        advantage = F.linear(features, self.head.weight, self.head.bias)  # (B, A)
        value = F.linear(features, self.value.weight, self.value.bias)  # (B, 1)
        return value + advantage - advantage.mean(dim=1, keepdim=True)


class NatureCNN(nn.Module):
    """Mnih et al. 2015: conv 32x8x8/4, 64x4x4/2, 64x3x3/1, then 512 units, ReLU throughout.

    Takes uint8 frames (B, C, 84, 84) as stored and scales them by 1/255 on the device, so replay
    and the host-to-device copy move bytes, not floats. 512 units is the paper's size, so the
    `hidden_dim` of the MLP presets does not apply. `dueling` adds a value stream beside the head.
    """

    def __init__(self, obs_shape: tuple[int, ...], n_actions: int, dueling: bool = False):
        super().__init__()
        if len(obs_shape) != 3:
            raise ValueError(f"the Nature CNN takes (C, H, W) image observations, not shape {obs_shape}; use --network mlp")
        channels, height, width = obs_shape
        self.convs = nn.Sequential(
            nn.Conv2d(channels, 32, kernel_size=8, stride=4),
            nn.ReLU(),
            nn.Conv2d(32, 64, kernel_size=4, stride=2),
            nn.ReLU(),
            nn.Conv2d(64, 64, kernel_size=3, stride=1),
            nn.ReLU(),
            nn.Flatten(),
        )
        with torch.no_grad():
            flat = self.convs(torch.zeros(1, channels, height, width)).shape[1]  # 3136 for 84x84
        self.hidden = nn.Linear(flat, 512)
        self.head = nn.Linear(512, n_actions)
        self.value = nn.Linear(512, 1) if dueling else None

    def forward(self, obs: Tensor) -> Tensor:
        x = self.convs(obs.float() * (1.0 / 255.0))  # (B, 3136)
        features = F.relu(self.hidden(x))  # (B, 512)
        q: Tensor = self.head(features)  # (B, A)
        if self.value is not None:
            q = self.value(features) + q - q.mean(dim=1, keepdim=True)
        return q


def is_image(obs_shape: tuple[int, ...]) -> bool:
    """A (C, 84, 84) observation: stacked Atari frames, which the Nature CNN takes."""
    return len(obs_shape) == 3 and tuple(obs_shape[1:]) == (84, 84)


def build_q_network(kind: str, obs_shape: tuple[int, ...], n_actions: int, hidden_dim: int) -> nn.Module:
    """`kind` names the network; any (C, 84, 84) observation gets the Nature CNN (dueling if asked)."""
    if kind == "nature_cnn" or is_image(obs_shape):
        return NatureCNN(obs_shape, n_actions, dueling=kind == "dueling")
    if kind == "mlp":
        return MLP(obs_shape, n_actions, hidden_dim)
    if kind == "dueling":
        return DuelingMLP(obs_shape, n_actions, hidden_dim)
    raise ValueError(f"unknown network {kind!r}; choose mlp, dueling or nature_cnn")


def network_signature(q_network: nn.Module) -> dict[str, list[int]]:
    """Parameter name -> shape, to refuse loading weights into a different architecture."""
    return {name: list(t.shape) for name, t in q_network.state_dict().items()}
