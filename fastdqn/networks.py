"""Q-networks: the tutorial's MLP, a dueling variant and the Nature CNN. Input (B, *obs_shape), output (B, n_actions)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def as_float_features(obs: Tensor) -> Tensor:
    """Observations as float32; uint8 ones (pixels) scaled by 1/255 to [0, 1], as the Nature CNN and
    SB3 scale images, so an MLP on pixels starts with inputs of the size its initial weights expect."""
    if obs.dtype == torch.uint8:
        return obs.float().mul_(1.0 / 255.0)
    return obs if obs.dtype == torch.float32 else obs.float()


def mlp_input(obs: Tensor) -> Tensor:
    """(B, *obs_shape) observations as the MLP's (B, obs_dim) float32 input; no op when they already are."""
    return obs if obs.dim() == 2 and obs.dtype == torch.float32 else as_float_features(obs.flatten(1))


def mlp_features(obs: Tensor, w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor) -> Tensor:
    """The two ReLU hidden layers both MLPs share: obs (B, *obs_shape) -> features (B, H)."""
    x = F.relu(F.linear(mlp_input(obs), w1, b1))
    return F.relu(F.linear(x, w2, b2))


def mlp_q(obs: Tensor, w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor, w3: Tensor, b3: Tensor) -> Tensor:
    """The MLP's forward as a function of its weights: obs (B, *obs_shape) -> Q (B, A)."""
    return F.linear(mlp_features(obs, w1, b1, w2, b2), w3, b3)


def dueling_q(obs: Tensor, w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor, wa: Tensor, ba: Tensor, wv: Tensor, bv: Tensor) -> Tensor:
    """The dueling MLP's forward: the trunk, then `V + A - mean(A)`."""
    features = mlp_features(obs, w1, b1, w2, b2)  # (B, H)
    advantage = F.linear(features, wa, ba)  # (B, A)
    return F.linear(features, wv, bv) + advantage - advantage.mean(dim=1, keepdim=True)


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

    def weights(self) -> tuple[Tensor, ...]:
        """The parameters in the order `mlp_q` takes them."""
        return (self.hidden1.weight, self.hidden1.bias, self.hidden2.weight, self.hidden2.bias, self.head.weight, self.head.bias)

    def forward(self, obs: Tensor) -> Tensor:
        return mlp_q(obs, *self.weights())  # (B, A)


class DuelingMLP(MLP):
    """The MLP trunk, then `Q = V + A - mean(A)` (Wang et al. 2016); `head` is the advantage stream."""

    def __init__(self, obs_shape: tuple[int, ...], n_actions: int, hidden_dim: int = 64):
        super().__init__(obs_shape, n_actions, hidden_dim)
        self.value = nn.Linear(hidden_dim, 1)

    def weights(self) -> tuple[Tensor, ...]:
        return (*super().weights(), self.value.weight, self.value.bias)

    def forward(self, obs: Tensor) -> Tensor:
        return dueling_q(obs, *self.weights())


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


def has_written_out_backward(q_network: nn.Module) -> bool:
    """True for exactly the MLP and the dueling MLP, whose forward and backward fastdqn writes out
    (`mlp_q`, `dueling_q`, backprop.py); a subclass may add parameters those functions do not know."""
    return type(q_network) in (MLP, DuelingMLP)


class FrozenForward:
    """A Q-network's forward with no autograd, for acting and TD targets: `frozen(obs) -> Q (B, A)`.

    For the MLPs it runs `mlp_q`/`dueling_q` over detached views of the weights: the views share
    memory with the parameters, so in-place optimizer steps, target syncs and `load_state_dict` show
    through, and a call skips the module's attribute lookups (a dozen per call, a tenth of acting's
    cost on a small CPU). Build it once the network sits on its device: `.to()` would move the
    parameters away from the views. `views=False` (and any other network) calls the module under
    `torch.no_grad()`, which is what a compiled update wants: CUDA graphs treat module parameters as
    static and would copy other captured tensors on every replay. A class rather than a closure so
    that an agent still round-trips through `torch.save`.
    """

    def __init__(self, q_network: nn.Module, views: bool = True):
        self.q_network = q_network
        self.weights: tuple[Tensor, ...] | None = None
        if views and has_written_out_backward(q_network):
            assert isinstance(q_network, MLP)
            self.weights = tuple(w.detach() for w in q_network.weights())
            self.q_of = dueling_q if isinstance(q_network, DuelingMLP) else mlp_q

    def __call__(self, obs: Tensor) -> Tensor:
        if self.weights is not None:
            return self.q_of(obs, *self.weights)
        with torch.no_grad():
            q: Tensor = self.q_network(obs)
        return q


def network_signature(q_network: nn.Module) -> dict[str, list[int]]:
    """Parameter name -> shape, to refuse loading weights into a different architecture."""
    return {name: list(t.shape) for name, t in q_network.state_dict().items()}
