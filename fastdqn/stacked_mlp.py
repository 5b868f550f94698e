"""The MLP and dueling MLP of K members at once: forward and written-out TD backward over (K, B).

`backprop.mlp_td_backward` with a member axis: every `mm` is a `bmm` over K, every bias add a
`baddbmm`, so K members cost one set of kernels. The weights live in one flat (K, P) tensor in the
order `MLP.weights()` gives them (the dueling MLP appends its value stream), and `StackedViews`
holds views into it, built once, so in-place Adam steps and target syncs show through.

Shapes: K = members, B = batch, D = obs features, H = hidden, A = actions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from fastdqn.backprop import relu_backward_
from fastdqn.networks import as_float_features
from fastdqn.td import bootstrap_target


class StackedViews:
    """Views into flat (K, P) weights: `weights` as (K, out, in) / (K, out) in `MLP.weights()` order,
    and per layer the (K, in, out) transpose and (K, 1, out) bias that `baddbmm` takes."""

    def __init__(self, flat: Tensor, shapes: Sequence[tuple[int, ...]]):
        k, offset = flat.shape[0], 0
        self.weights: list[Tensor] = []
        for shape in shapes:
            n = math.prod(shape)
            self.weights.append(flat[:, offset : offset + n].view(k, *shape))
            offset += n
        pairs = zip(self.weights[0::2], self.weights[1::2], strict=True)
        self.layers = [(w.transpose(1, 2), b.unsqueeze(1)) for w, b in pairs]  # hidden1, hidden2, head[, value]
        self.dueling = len(self.weights) == 8


def stacked_input(obs: Tensor) -> Tensor:
    """(K, B, *obs_shape) -> (K, B, D) float32; no op when it already is."""
    return obs if obs.dim() == 3 and obs.dtype == torch.float32 else as_float_features(obs.flatten(2))


def _forward(views: StackedViews, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """h1, h2 (K, B, H) and Q (K, B, A)."""
    (w1t, b1), (w2t, b2), (wat, ba) = views.layers[:3]
    h1 = torch.baddbmm(b1, x, w1t).relu_()
    h2 = torch.baddbmm(b2, h1, w2t).relu_()
    head = torch.baddbmm(ba, h2, wat)
    if not views.dueling:
        return h1, h2, head
    wvt, bv = views.layers[3]  # dueling: `head` is the advantage stream
    return h1, h2, torch.baddbmm(bv, h2, wvt) + head - head.mean(dim=2, keepdim=True)


def stacked_q(views: StackedViews, obs: Tensor) -> Tensor:
    """Q (K, B, A) of obs (K, B, *obs_shape), no autograd."""
    return _forward(views, stacked_input(obs))[2]


def stacked_td_backward(
    views: StackedViews,
    grad: Tensor,
    obs: Tensor,
    action: Tensor,
    td_target: Tensor,
    huber: bool,
    sample_weights: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Loss (K,), mean Q (K,) and td_error (K, B); d loss / d weights written into `grad` (K, P).

    Args:
        obs: (K, B, *obs_shape); action: (K, B) int64; td_target: (K, B) float32.
        sample_weights: (K, B) importance weights (prioritized replay), None for uniform.
    """
    x = stacked_input(obs)
    h1, h2, q_all = _forward(views, x)
    index = action.unsqueeze(2)  # (K, B, 1)
    q = q_all.gather(2, index).squeeze(2)  # (K, B)
    td_error = td_target - q
    batch_size = q.shape[1]
    if huber:
        elementwise = F.smooth_l1_loss(q, td_target, reduction="none")
        grad_q = td_error.clamp(-1.0, 1.0).mul_(-1.0 / batch_size)
    else:
        elementwise = td_error.square()
        grad_q = td_error.mul(-2.0 / batch_size)
    if sample_weights is None:
        loss = elementwise.mean(dim=1)
    else:
        loss = (sample_weights * elementwise).mean(dim=1)
        grad_q.mul_(sample_weights)
    grad_head = torch.zeros_like(q_all).scatter_(2, index, grad_q.unsqueeze(2))  # (K, B, A)
    _, _, w2, _, wa = views.weights[:5]
    parts: list[Tensor] = []
    if views.dueling:
        wv = views.weights[6]  # (K, 1, H)
        grad_value = grad_head.sum(dim=2, keepdim=True)  # (K, B, 1): V feeds every action's Q
        grad_head.sub_(grad_value, alpha=1.0 / grad_head.shape[2])  # through A - mean(A)
        parts = [torch.bmm(grad_value.transpose(1, 2), h2).flatten(1), grad_value.sum(dim=1)]
        grad_h2 = torch.baddbmm(grad_value * wv, grad_head, wa)  # (K, B, H)
    else:
        grad_h2 = torch.bmm(grad_head, wa)
    grad_z2 = relu_backward_(grad_h2, h2)
    grad_z1 = relu_backward_(torch.bmm(grad_z2, w2), h1)
    torch.cat(
        [
            torch.bmm(grad_z1.transpose(1, 2), x).flatten(1),
            grad_z1.sum(dim=1),
            torch.bmm(grad_z2.transpose(1, 2), h1).flatten(1),
            grad_z2.sum(dim=1),
            torch.bmm(grad_head.transpose(1, 2), h2).flatten(1),
            grad_head.sum(dim=1),
            *parts,
        ],
        dim=1,
        out=grad,
    )
    return loss, q.mean(dim=1), td_error


def stacked_td_target(
    online: StackedViews,
    target: StackedViews,
    gamma: Tensor,
    reward: Tensor,
    next_obs: Tensor,
    terminated: Tensor,
    discount: Tensor | None,
    double_dqn: bool,
) -> Tensor:
    """(K, B) `r + gamma_k Q_target(s', a*)`, a* from the online net with Double DQN; n-step rows
    bootstrap with their own `discount` (K, B) (already 0 after a terminal). `gamma`: (K, 1)."""
    next_q_online = stacked_q(online, next_obs) if double_dqn else None  # (K, B, A)
    return bootstrap_target(reward, stacked_q(target, next_obs), next_q_online, gamma, terminated, discount)


def stacked_loss_and_grad(
    online: Tensor,
    target: Tensor,
    shapes: Sequence[tuple[int, ...]],
    gamma: Tensor,
    obs: Tensor,
    action: Tensor,
    reward: Tensor,
    next_obs: Tensor,
    terminated: Tensor,
    sample_weights: Tensor | None,
    discount: Tensor | None,
    double_dqn: bool,
    huber: bool,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The whole stacked TD step as one pure function, for `torch.compile`: grad (K, P), loss (K,),
    mean Q (K,), td_error (K, B) from the flat weights `online` / `target` (K, P) and a batch.

    `stacked_td_target` and `stacked_td_backward`, as the eager update runs them; compiled, the dozens of
    small elementwise ops between the matmuls fuse, which is what a K-member update spends its
    non-matmul time on. The optimizer step stays outside (it mutates the weights read here).
    """
    online_views, target_views = StackedViews(online, shapes), StackedViews(target, shapes)
    td_target = stacked_td_target(online_views, target_views, gamma, reward, next_obs, terminated, discount, double_dqn)
    grad = torch.empty_like(online)
    loss, q_mean, td_error = stacked_td_backward(online_views, grad, obs, action, td_target, huber, sample_weights)
    return grad, loss, q_mean, td_error
