"""Q-networks: the tutorial's MLP and a dueling variant. Input (B, *obs_shape), output (B, n_actions)."""

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


def build_q_network(kind: str, obs_shape: tuple[int, ...], n_actions: int, hidden_dim: int) -> nn.Module:
    if kind == "mlp":
        return MLP(obs_shape, n_actions, hidden_dim)
    if kind == "dueling":
        return DuelingMLP(obs_shape, n_actions, hidden_dim)
    raise ValueError(f"unknown network {kind!r}; choose mlp or dueling")


def network_signature(q_network: nn.Module) -> dict[str, list[int]]:
    """Parameter name -> shape, to refuse loading weights into a different architecture."""
    return {name: list(t.shape) for name, t in q_network.state_dict().items()}


@torch.no_grad()
def greedy_actions(q_network: nn.Module, obs: Tensor) -> Tensor:
    actions: Tensor = q_network(obs).argmax(dim=1)  # (B,)
    return actions
