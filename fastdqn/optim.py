"""Flat parameters and an Adam step over them.

A Q-network for CartPole has six small parameter tensors; per-tensor bookkeeping (a foreach call
walks each list, `clip_grad_norm_` reduces each tensor) costs more than the arithmetic. Here every
parameter becomes a view into one contiguous 1-D tensor, and every `.grad` a view into another, so
Adam, gradient clipping and the target update are each a handful of single-tensor ops.

The Adam here follows `torch.optim.Adam` (no weight decay, no amsgrad) and is checked against it in
the tests. It exists because `torch.optim` imports `torch._dynamo` on first use (about 1.5 s on a
small CPU), which eager CartPole runs never need, and because its step counter is a device tensor,
so the whole update can be compiled and captured in a CUDA graph without a host sync.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn


class FlatParameters:
    """Rebinds `module`'s parameters (and, with `grads=True`, their `.grad`) as views of flat tensors.

    `data` (P,) holds every parameter, `grad` (P,) every gradient; autograd accumulates into the
    views in place, so zero `grad` before each backward instead of setting grads to None.
    """

    def __init__(self, module: nn.Module, grads: bool = True):
        params = list(module.parameters())
        if not params:
            raise ValueError("the module has no parameters")
        self.data = torch.cat([p.detach().reshape(-1) for p in params])
        self.grad = torch.zeros_like(self.data) if grads else None
        offset = 0
        for p in params:
            n = p.numel()
            p.data = self.data[offset : offset + n].view_as(p)
            if self.grad is not None:
                p.grad = self.grad[offset : offset + n].view_as(p)
            offset += n

    def zero_grad(self) -> None:
        if self.grad is not None:
            self.grad.zero_()


class Adam:
    """Adam over one flat parameter tensor and its flat gradient.

    Args:
        params: (P,) parameters, updated in place.
        grads: (P,) gradients, read by `step`.
    """

    def __init__(self, params: Tensor, grads: Tensor, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        self.params = params
        self.grads = grads
        self.lr = lr
        self.beta1, self.beta2 = betas
        self.eps = eps
        self.exp_avg = torch.zeros_like(params)
        self.exp_avg_sq = torch.zeros_like(params)
        self.step_count = torch.zeros((), dtype=torch.float32, device=params.device)

    @torch.no_grad()
    def step(self, grad_scale: Tensor | None = None) -> None:
        """One Adam step on `grads / grad_scale` (grad_scale: () tensor, e.g. from `clip_scale`)."""
        self.step_count += 1
        if self.params.device.type in ("cpu", "cuda"):
            # one fused kernel over the flat tensors: the same arithmetic torch.optim.Adam(fused=True) runs
            torch._fused_adam_(
                [self.params],
                [self.grads],
                [self.exp_avg],
                [self.exp_avg_sq],
                [],
                [self.step_count],
                amsgrad=False,
                lr=self.lr,
                beta1=self.beta1,
                beta2=self.beta2,
                weight_decay=0.0,
                eps=self.eps,
                maximize=False,
                grad_scale=grad_scale,
                found_inf=None,
            )
            return
        grads = self.grads if grad_scale is None else self.grads / grad_scale
        self.exp_avg.lerp_(grads, 1 - self.beta1)
        self.exp_avg_sq.mul_(self.beta2).addcmul_(grads, grads, value=1 - self.beta2)
        bias_correction1 = 1 - self.beta1**self.step_count  # () tensor: no host sync, no recompile
        bias_correction2_sqrt = (1 - self.beta2**self.step_count).sqrt()
        denom = (self.exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(self.eps)
        self.params.addcdiv_(self.exp_avg, denom * (bias_correction1 / self.lr), value=-1.0)

    def state_dict(self) -> dict[str, Any]:
        return {"exp_avg": self.exp_avg, "exp_avg_sq": self.exp_avg_sq, "step": self.step_count, "lr": self.lr}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.exp_avg.copy_(state["exp_avg"])
        self.exp_avg_sq.copy_(state["exp_avg_sq"])
        self.step_count.copy_(state["step"])


@torch.no_grad()
def clip_scale(grads: Tensor, max_norm: float) -> Tensor:
    """The divisor that brings `grads` (P,) to global L2 norm <= max_norm, as a () tensor.

    Dividing by `max(norm / max_norm, 1)` is `torch.nn.utils.clip_grad_norm_`; returning the divisor
    instead of branching on the norm keeps it on the device (no host sync), and the fused Adam
    kernel applies it while it reads the gradient, so the gradient is never rewritten.
    """
    scale: Tensor = ((torch.linalg.vector_norm(grads) + 1e-6) / max_norm).clamp_(min=1.0)
    return scale
