"""The TD target, once: `r + gamma * Q_target(s', a*)` for a single run, K stacked members or one vmapped member."""

from __future__ import annotations

from torch import Tensor


def bootstrap_target(
    reward: Tensor, next_q_target: Tensor, next_q_online: Tensor | None, gamma: float | Tensor, terminated: Tensor, discount: Tensor | None
) -> Tensor:
    """`r + gamma * Q_target(s', a*)` over the last (action) axis of Q, any leading shape ((B,), (K, B)).

    a* is the online net's argmax (Double DQN: pass `next_q_online`) or the target's own max (None).
    Only a true terminal cuts the bootstrap: a time-limit end still bootstraps from s', the state
    where the episode was cut. n-step rows pass `discount` (gamma^k for the k steps they sum, already
    0 after a terminal) in place of gamma and `terminated`. `gamma`: a float, or (K, 1) per member.
    """
    if next_q_online is not None:
        next_value = next_q_target.gather(-1, next_q_online.argmax(dim=-1, keepdim=True)).squeeze(-1)
    else:
        next_value = next_q_target.amax(dim=-1)
    if discount is not None:
        return reward + discount * next_value
    return reward + (gamma * next_value).masked_fill(terminated, 0.0)
