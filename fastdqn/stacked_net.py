"""K copies of any Q-network (the Nature CNN) trained as one through `torch.func`: `vmap` over the
member axis of flat (K, P) weights, `grad` of each member's TD loss.

Why: the MLPs have a written-out batched backward (`stacked_mlp.py`); any other network needs
autograd. `vmap` turns K members' convs into one batched call per op, and `torch.compile` of the
whole step (`--compile on`, or `auto` on CUDA) gives one graph for all K members, as the stacked MLP
step does. On an eager CPU the same per-member function runs in a loop instead (`vectorize=False`):
vmap's grouped convolutions measured 1.5x slower there than K separate ones. Each member computes what its single run's
`DQNAgent._td_loss` computes: the same target (Double DQN or not, n-step discounts, terminals zeroed),
Huber or MSE, PER weights, to float tolerance (batched kernels sum in another order).

Shapes: K = members, B = batch, P = parameters, A = actions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, grad, vmap

from fastdqn.td import bootstrap_target


class StackedNet:
    """`module`'s forward and TD-loss gradient for K members whose weights are rows of a (K, P) tensor.

    The rows are in `module.parameters()` order, as `DQNAgent.online` flattens them. `module` only
    lends its code: its own parameters are never read. `vectorize`: vmap over members (else a loop).
    """

    def __init__(self, module: nn.Module, vectorize: bool = True):
        self.module = module
        self.vectorize = vectorize
        self.names = [name for name, _ in module.named_parameters()]
        self.shapes = [tuple(p.shape) for p in module.parameters()]
        self.sizes = [p.numel() for p in module.parameters()]

    def params(self, flat: Tensor) -> dict[str, Tensor]:
        """One member's (P,) weights as the module's named parameters (views)."""
        return {name: part.view(shape) for name, part, shape in zip(self.names, flat.split(self.sizes), self.shapes, strict=True)}

    def q(self, flat: Tensor, obs: Tensor) -> Tensor:
        """Q-values (K, N, A) of obs (K, N, *obs_shape) under weights (K, P)."""
        q: Tensor = vmap(lambda w, x: functional_call(self.module, self.params(w), (x,)))(flat, obs)
        return q

    def loss_and_grad(
        self,
        online: Tensor,
        target: Tensor,
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
        """grad (K, P), loss (K,), mean Q (K,), td_error (K, B) of every member's TD loss on its batch
        (obs (K, B, ...), action (K, B), ...; gamma (K, 1)); the optimizer step stays outside."""

        def member_target(w: Tensor, w_target: Tensor, g: Tensor, r: Tensor, o2: Tensor, done: Tensor, d: Tensor | None) -> Tensor:
            next_q_online = functional_call(self.module, self.params(w), (o2,)) if double_dqn else None
            return bootstrap_target(r, functional_call(self.module, self.params(w_target), (o2,)), next_q_online, g, done, d)

        def member_loss(
            w: Tensor, td_target: Tensor, o: Tensor, a: Tensor, sw: Tensor | None
        ) -> tuple[Tensor, tuple[Tensor, Tensor, Tensor]]:
            q = functional_call(self.module, self.params(w), (o,)).gather(1, a.unsqueeze(1)).squeeze(1)  # (B,)
            elementwise = F.smooth_l1_loss(q, td_target, reduction="none") if huber else (td_target - q).square()
            loss = elementwise.mean() if sw is None else (sw * elementwise).mean()
            return loss, (loss.detach(), q.detach().mean(), (td_target - q).detach())

        member_grad = grad(member_loss, has_aux=True)  # the target is computed apart, with no graph: as DQNAgent does
        if self.vectorize:
            with torch.no_grad():
                td_target = vmap(member_target, in_dims=(0, 0, 0, 0, 0, 0, None if discount is None else 0))(
                    online, target, gamma.squeeze(1), reward, next_obs, terminated, discount
                )
            grads, (loss, q_mean, td_error) = vmap(member_grad, in_dims=(0, 0, 0, 0, None if sample_weights is None else 0))(
                online, td_target, obs, action, sample_weights
            )
            return grads, loss, q_mean, td_error
        parts = []
        for k in range(online.shape[0]):
            with torch.no_grad():
                discount_k = None if discount is None else discount[k]
                td_target_k = member_target(online[k], target[k], gamma[k, 0], reward[k], next_obs[k], terminated[k], discount_k)
            parts.append(member_grad(online[k], td_target_k, obs[k], action[k], None if sample_weights is None else sample_weights[k]))
        return (
            torch.stack([g for g, _ in parts]),
            torch.stack([aux[0] for _, aux in parts]),
            torch.stack([aux[1] for _, aux in parts]),
            torch.stack([aux[2] for _, aux in parts]),
        )
