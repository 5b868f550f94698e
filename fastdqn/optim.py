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

from collections.abc import Sequence
from typing import Any

import numpy as np
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
    """Adam over flat parameters: (P,) for one run, or (K, P) for K members trained as one.

    Args:
        params: (P,) or (K, P) parameters, updated in place.
        grads: gradients of the same shape, read by `step`.
        lr, eps: one value, or one per member (K > 1 only).
    With a member axis each member keeps its own step count (`step_count` (K,)), so a member left
    out of a step (`active`) keeps its weights and moments exactly.
    """

    def __init__(
        self,
        params: Tensor,
        grads: Tensor,
        lr: float | Sequence[float],
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float | Sequence[float] = 1e-8,
    ):
        self.params = params
        self.grads = grads
        self.beta1, self.beta2 = betas
        self.exp_avg = torch.zeros_like(params)
        self.exp_avg_sq = torch.zeros_like(params)
        members = params.shape[0] if params.dim() == 2 else None
        self.stacked = members is not None
        self.fusable = params.device.type in ("cpu", "cuda")  # where torch has the fused kernel
        lrs = [float(lr)] * (members or 1) if isinstance(lr, (int, float)) else [float(v) for v in lr]
        epss = [float(eps)] * (members or 1) if isinstance(eps, (int, float)) else [float(v) for v in eps]
        self.step_count = torch.zeros(() if members is None else (members,), dtype=torch.float32, device=params.device)
        self.member_rates = list(zip(lrs, epss, strict=True))
        """(lr, eps) per member on the host: what the fused kernel takes, one member or all at once."""
        self.lrs = torch.tensor(lrs, device=params.device).unsqueeze(1)  # (K, 1): the masked step's copy
        self.epss = torch.tensor(epss, device=params.device).unsqueeze(1)

    @property
    def lr(self) -> float:
        return self.member_rates[0][0]

    @property
    def eps(self) -> float:
        return self.member_rates[0][1]

    @property
    def one_rate(self) -> bool:
        """Every member has the same lr and eps: one fused kernel can step them all."""
        return len(set(self.member_rates)) == 1

    @torch.no_grad()
    def step(self, grad_scale: Tensor | None = None, active: np.ndarray | None = None) -> None:
        """One Adam step on `grads / grad_scale` (grad_scale: () tensor, e.g. from `clip_scale`).

        With a member axis, `active` (K,) bool (host) steps only those members; None steps every
        member, whose step counts must then be equal (one fused kernel over the (K * P) flat tensors).
        Members with rates or step counts of their own get one fused kernel each on a CPU, the very
        arithmetic of their single runs (a masked step over (K, P) rounds otherwise, and Adam magnifies
        that on weights whose gradient is ~0: a learning-rate grid's members left their single runs by
        1e-3 within 30 updates); on CUDA one masked step, as K launches per update would cost more.
        """
        fused = self.fusable and active is None and (not self.stacked or self.one_rate)
        if not fused and self.stacked:
            members = range(len(self.member_rates)) if active is None else np.flatnonzero(active)
            if self.fusable and self.params.device.type == "cpu":
                for k in members:
                    step = self.step_count[k]  # a view: the count advances in place
                    step += 1
                    lr, eps = self.member_rates[k]
                    self._fused(self.params[k], self.grads[k], self.exp_avg[k], self.exp_avg_sq[k], step, lr, eps, grad_scale)
                return
            on = np.ones(len(self.member_rates), dtype=bool) if active is None else active
            self._masked_step(torch.from_numpy(on).to(self.params.device, non_blocking=True))
            return
        self.step_count += 1
        if fused:
            step = self.step_count[0] if self.stacked else self.step_count  # members: equal counts here
            self._fused(
                self.params.view(-1),
                self.grads.view(-1),
                self.exp_avg.view(-1),
                self.exp_avg_sq.view(-1),
                step,
                self.lr,
                self.eps,
                grad_scale,
            )
            return
        grads = self.grads if grad_scale is None else self.grads / grad_scale
        self.exp_avg.lerp_(grads, 1 - self.beta1)
        self.exp_avg_sq.mul_(self.beta2).addcmul_(grads, grads, value=1 - self.beta2)
        bias_correction1 = 1 - self.beta1**self.step_count  # () tensor: no host sync, no recompile
        bias_correction2_sqrt = (1 - self.beta2**self.step_count).sqrt()
        denom = (self.exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(self.eps)
        self.params.addcdiv_(self.exp_avg, denom * (bias_correction1 / self.lr), value=-1.0)

    def _fused(
        self,
        params: Tensor,
        grads: Tensor,
        exp_avg: Tensor,
        exp_avg_sq: Tensor,
        step: Tensor,
        lr: float,
        eps: float,
        grad_scale: Tensor | None,
    ) -> None:
        """One fused kernel over flat tensors: the same arithmetic torch.optim.Adam(fused=True) runs."""
        torch._fused_adam_(
            [params],
            [grads],
            [exp_avg],
            [exp_avg_sq],
            [],
            [step],
            amsgrad=False,
            lr=lr,
            beta1=self.beta1,
            beta2=self.beta2,
            weight_decay=0.0,
            eps=eps,
            maximize=False,
            grad_scale=grad_scale,
            found_inf=None,
        )

    def _masked_step(self, active: Tensor) -> None:
        """Members: a learning rate and step count each; inactive members are left exactly as they are."""
        on = active.to(torch.float32)  # (K,)
        self.step_count += on
        weight = on.unsqueeze(1)  # (K, 1): a lerp weight of 0 leaves an inactive member's moments alone
        self.exp_avg.lerp_(self.grads, weight * (1 - self.beta1))
        self.exp_avg_sq.lerp_(self.grads * self.grads, weight * (1 - self.beta2))
        steps = self.step_count.clamp(min=1.0).unsqueeze(1)
        bias_correction1 = 1 - self.beta1**steps
        bias_correction2_sqrt = (1 - self.beta2**steps).sqrt()
        denom = (self.exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(self.epss)
        self.params.sub_(self.exp_avg / denom * (self.lrs * weight / bias_correction1))

    def keep(self, index: Tensor, params: Tensor, grads: Tensor) -> None:
        """Members: go on with the members at `index` (K',), now stepping `params` and `grads` (K', P)."""
        self.params, self.grads = params, grads
        for name in ("exp_avg", "exp_avg_sq", "step_count", "lrs", "epss"):
            setattr(self, name, getattr(self, name).index_select(0, index))
        self.member_rates = [self.member_rates[i] for i in index.tolist()]  # the configs' own values, not float32 roundings

    def set_lr(self, lrs: Sequence[float]) -> None:
        """New step sizes, one per member (one for a single run), e.g. a schedule's at this env step.

        The fused kernel takes `lr` as a host float; the members' (K, 1) `lrs` get theirs by one
        non-blocking host-to-device copy, so a scheduled rate costs no host sync and, as the step is
        never compiled or captured, no recompile.
        """
        self.member_rates = [(float(lr), eps) for lr, (_, eps) in zip(lrs, self.member_rates, strict=True)]
        if self.stacked:
            self.lrs.copy_(torch.tensor(lrs, dtype=torch.float32).unsqueeze(1), non_blocking=True)

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


@torch.no_grad()
def sync_target(target: Tensor, online: Tensor, tau: float | Tensor, members: Tensor | None = None) -> None:
    """Hard copy (`tau` >= 1) or Polyak average (LeanRL's one `lerp_`) of the online weights into the target.

    One run: `target`, `online` (P,), `tau` a float. K members: (K, P), the rows `members` (M,) int64
    only, `tau` a float for all of them or (K, 1) per member.
    """
    hard = isinstance(tau, float) and tau >= 1.0
    if members is None:
        if hard:
            target.copy_(online)
        else:
            target.lerp_(online, tau)
        return
    rows = online.index_select(0, members)
    if not hard:
        rows = target.index_select(0, members).lerp_(rows, tau if isinstance(tau, float) else tau.index_select(0, members))
    target.index_copy_(0, members, rows)
