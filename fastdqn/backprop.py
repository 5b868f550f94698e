"""The TD loss and its gradient for the MLP Q-networks, written out by hand.

Why: for the MLPs DQN uses on vector observations, the autograd engine costs more than the
arithmetic. A 4-256-256-2 update at batch 64 spends about 0.6 ms in its four large matmuls and
another 0.8 ms recording the graph, walking it and accumulating six gradients on a small CPU. The
backward of a ReLU MLP is a dozen ops, so here it is written once, with every weight gradient
written by `out=` straight into the flat gradient views that the fused Adam step reads (no
zero_grad, no accumulation). The agent uses it for the MLP and dueling MLP whenever the update is
not compiled; a compiled update (CUDA by default) goes through autograd, which torch.compile turns
into fused kernels. `tests/test_backprop.py` checks both paths give the same loss and gradients.

Shapes: B = batch, H = hidden, A = actions; every tensor on one device.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from fastdqn.networks import mlp_input


def relu_backward_(grad: Tensor, activation: Tensor) -> Tensor:
    """Gradient through `activation = relu(z)`, in place in `grad`: zero where the unit was off.

    ATen's own ReLU backward (`threshold_backward`) written into `grad`: no temporary, where
    `grad * activation.sign()` allocated one of the activation's size (a (K, B, H) one of 10 x 128 x
    128 on each update; large temporaries can cost a page fault per 4 KiB) and ran 1.7x slower.
    """
    return torch.ops.aten.threshold_backward.grad_input(grad, activation, 0.0, grad_input=grad)  # type: ignore[no-any-return]


def _linear_backward(grad_out: Tensor, inputs: Tensor, weight_grad: Tensor, bias_grad: Tensor) -> None:
    """Write the weight (out, in) and bias (out,) gradients of `inputs @ W.T + b` given grad_out (B, out)."""
    torch.mm(grad_out.t(), inputs, out=weight_grad)
    torch.sum(grad_out, 0, out=bias_grad)


def mlp_td_backward(
    weights: Sequence[Tensor],
    grads: Sequence[Tensor],
    obs: Tensor,
    action: Tensor,
    td_target: Tensor,
    loss_kind: str,
    sample_weights: Tensor | None = None,
    dueling: bool = False,
) -> tuple[Tensor, Tensor, Tensor]:
    """Loss of one batch, with the gradient of every weight written into `grads`.

    Args:
        weights: detached parameters in `MLP.weights()` order, 6 for the MLP, 8 for the dueling MLP.
        grads: tensors of the same shapes, overwritten with d loss / d weight.
        obs: (B, *obs_shape); action: (B,) int64; td_target: (B,) float32, no grad.
        loss_kind: `huber` (smooth L1, delta 1) or `mse`.
        sample_weights: (B,) importance weights (prioritized replay), None for uniform.
        dueling: the weights are the dueling MLP's (`dueling_q`): trunk, advantage head, value head.
    Returns:
        loss (), mean Q of the taken actions (), td_error (B,) = td_target - Q(s, a).
    """
    if len(weights) != (8 if dueling else 6) or len(grads) != len(weights):
        raise ValueError(f"expected {8 if dueling else 6} weights and as many gradients, got {len(weights)} and {len(grads)}")
    w1, b1, w2, b2, wa, ba = weights[:6]
    x = mlp_input(obs)  # (B, D)
    h1 = torch.addmm(b1, x, w1.t()).relu_()  # (B, H)
    h2 = torch.addmm(b2, h1, w2.t()).relu_()  # (B, H)
    head = torch.addmm(ba, h2, wa.t())  # (B, A): Q, or the advantage stream of the dueling MLP
    if dueling:
        wv, bv = weights[6:]
        q_all = torch.addmm(bv, h2, wv.t()) + head - head.mean(dim=1, keepdim=True)
    else:
        q_all = head
    index = action.unsqueeze(1)  # (B, 1)
    q = q_all.gather(1, index).squeeze(1)  # (B,)
    td_error = td_target - q

    batch_size = q.shape[0]
    if loss_kind == "huber":
        elementwise = torch.nn.functional.smooth_l1_loss(q, td_target, reduction="none")
        grad_q = td_error.clamp(-1.0, 1.0).mul_(-1.0 / batch_size)  # d/dq of mean smooth L1
    else:
        elementwise = td_error.square()
        grad_q = td_error.mul(-2.0 / batch_size)
    if sample_weights is None:
        loss = elementwise.mean()
    else:
        loss = (sample_weights * elementwise).mean()
        grad_q.mul_(sample_weights)

    grad_head = torch.zeros_like(q_all).scatter_(1, index, grad_q.unsqueeze(1))  # (B, A)
    if dueling:
        grad_value = grad_head.sum(dim=1, keepdim=True)  # (B, 1): V feeds every action's Q
        grad_head.sub_(grad_value, alpha=1.0 / grad_head.shape[1])  # through A - mean(A)
        _linear_backward(grad_value, h2, grads[6], grads[7])
        grad_h2 = torch.addmm(grad_value * wv, grad_head, wa)  # (B, H): value's outer product, plus the advantage's
    else:
        grad_h2 = grad_head.mm(wa)  # (B, H)
    _linear_backward(grad_head, h2, grads[4], grads[5])
    grad_z2 = relu_backward_(grad_h2, h2)
    _linear_backward(grad_z2, h1, grads[2], grads[3])
    grad_z1 = relu_backward_(grad_z2.mm(w2), h1)
    _linear_backward(grad_z1, x, grads[0], grads[1])
    return loss, q.mean(), td_error
