"""The envs of K members as one vector env of K x N envs, and their greedy evaluation, stacked.

Rows k*N..(k+1)*N-1 are member k's. A native env (`--env-backend torch`) is one `TorchVectorEnv` of
K x N envs reset with the members' seeds, which draws for each member what a single run with its
seed draws. Gymnasium's own vector envs seed all their sub-envs from one generator (its CartPole
draws every start state from one `np_random`), so a K x N Gymnasium env could not give member k the
starts of a single run with seed k: there each member keeps its own N-env Gymnasium vector env,
stepped one after the other (K numpy steps, one host round trip for all), and reset with its seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from fastdqn.config import Config
from fastdqn.envs import EnvSpaces, EnvStep, GymnasiumEnv, TorchVectorEnv, make_envs, resolve_backend
from fastdqn.evaluate import CHECK_EVERY, Evaluation, best_future, can_cut_short
from fastdqn.members import MemberAgents


class MemberEnvs:
    """K members' envs behind one step: actions (K*N,) in, an `EnvStep` of K*N rows out.

    Args:
        cfgs: the members' configs (same env, backend and num_envs).
        envs_per_member: N (num_envs for training, eval_episodes for evaluation).
        training: False for evaluation envs (ALE ids keep lives and raw rewards).
    """

    def __init__(self, cfgs: Sequence[Config], envs_per_member: int, device: torch.device, training: bool = True):
        cfg = cfgs[0]
        self.k, self.n = len(cfgs), envs_per_member
        self.num_envs = self.k * self.n
        self.device = device
        backend = resolve_backend(cfg.env_id, cfg.num_envs, cfg.env_backend)
        self.native: TorchVectorEnv | None = None
        self.parts: list[GymnasiumEnv] = []
        if backend == "torch":
            native = make_envs(cfg.env_id, self.num_envs, "torch", device)
            assert isinstance(native, TorchVectorEnv)
            self.native = native
            self.spaces: EnvSpaces = native.spaces
            self.max_episode_steps = native.max_episode_steps
            self.max_step_reward = native.max_step_reward
        else:
            for _ in cfgs:
                part = make_envs(cfg.env_id, self.n, "gymnasium", device, cfg.vectorization_mode, training)
                assert isinstance(part, GymnasiumEnv)
                self.parts.append(part)
            self.spaces = self.parts[0].spaces
            self.max_episode_steps = self.parts[0].max_episode_steps
            self.max_step_reward = self.parts[0].max_step_reward

    def reset(self, seeds: Sequence[int]) -> Tensor:
        """Member k's envs start from `seeds[k]` as a single run's would; obs (K*N, *obs_shape)."""
        if self.native is not None:
            return self.native.reset(seed=list(seeds))
        return torch.cat([part.reset(seed=seed) for part, seed in zip(self.parts, seeds, strict=True)])

    def step(self, actions: Tensor) -> EnvStep:
        if self.native is not None:
            return self.native.step(actions)
        host = actions.cpu()  # one device -> host copy for every member
        steps = [part.step(host[k * self.n : (k + 1) * self.n]) for k, part in enumerate(self.parts)]
        next_obs = torch.cat([s.next_obs for s in steps])
        valid = None
        if any(s.valid is not None for s in steps):
            valid = np.concatenate([np.ones(self.n, dtype=bool) if s.valid is None else s.valid for s in steps])
        return EnvStep(
            next_obs,
            torch.cat([s.reward for s in steps]),
            torch.cat([s.terminated for s in steps]),
            torch.cat([s.truncated for s in steps]),
            next_obs,
            valid,
        )

    def keep(self, slots: Sequence[int]) -> None:
        """Go on with the envs of the members at `slots` only, each where it is."""
        if self.native is not None:
            saved = self.native.state_dict()
            rows = torch.cat([torch.arange(i * self.n, (i + 1) * self.n) for i in slots]).to(self.device)
            native = make_envs(self.native.env_id, len(slots) * self.n, "torch", self.device)
            assert isinstance(native, TorchVectorEnv)
            native.load_state_dict({name: value if name == "kind" else value.index_select(0, rows) for name, value in saved.items()})
            self.native = native
        else:
            for i, part in enumerate(self.parts):
                if i not in slots:
                    part.close()
            self.parts = [self.parts[i] for i in slots]
        self.k = len(slots)
        self.num_envs = self.k * self.n

    def state_dict(self) -> dict[str, Any] | None:
        """Every env's state as plain data, or None where a Gymnasium env's cannot be read."""
        if self.native is not None:
            return {"native": self.native.state_dict()}
        parts = [part.state_dict() for part in self.parts]
        return None if any(p is None for p in parts) else {"parts": parts}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.native is not None:
            self.native.load_state_dict(state["native"])
            return
        for part, saved in zip(self.parts, state["parts"], strict=True):
            part.load_state_dict(saved)

    def member_step(self, step: EnvStep, k: int) -> EnvStep:
        """Member k's rows of a step (views)."""
        rows = slice(k * self.n, (k + 1) * self.n)
        valid = None if step.valid is None else step.valid[rows]
        return EnvStep(step.next_obs[rows], step.reward[rows], step.terminated[rows], step.truncated[rows], step.final_obs[rows], valid)

    def close(self) -> None:
        for part in self.parts:
            part.close()


class MemberEvaluator:
    """Greedy evaluation of every member at once: `eval_episodes` envs per member, each member's
    reset with `seed + 100_000` as a single run's `Evaluator.for_run` resets them."""

    def __init__(self, cfgs: Sequence[Config], device: torch.device):
        self.envs = MemberEnvs(cfgs, cfgs[0].eval_episodes, device, training=False)
        self.seeds = [c.seed + 100_000 for c in cfgs]
        self.targets = [c.stop_at_return for c in cfgs]

    @torch.no_grad()
    def run(self, members: MemberAgents) -> list[Evaluation]:
        """An evaluation of every member.

        Member k's evaluation ends where a single run's `Evaluator.run` would end it: once all its
        episodes have ended, or once their mean can no longer reach its `stop_at_return`.
        """
        envs, k, n = self.envs, self.envs.k, self.envs.n
        obs = envs.reset(self.seeds)
        returns = torch.zeros((k, n), dtype=torch.float64, device=envs.device)
        running = torch.ones((k, n), dtype=torch.bool, device=envs.device)
        limit, best_step = envs.max_episode_steps, envs.max_step_reward
        results: list[Evaluation] = [Evaluation(np.zeros(0), False)] * k
        pending = set(range(k))
        greedy = [0.0] * k
        steps = 0
        while pending:
            actions = members.act(obs.view(k, n, *obs.shape[1:]), greedy).view(-1)
            reward, done, obs = self._step(actions, pending, obs)
            returns += reward * running
            running &= ~done
            steps += 1
            if steps % CHECK_EVERY != 0 and envs.device.type != "cpu":
                continue
            still = running.any(dim=1).tolist()  # a host sync on CUDA, every CHECK_EVERY steps
            best_case: list[float] | None = None
            if limit is not None and best_step is not None:
                best_case = (returns + running * best_future(limit, best_step, steps)).mean(dim=1).tolist()
            for member in sorted(pending):
                target = self.targets[member]
                if not still[member]:
                    results[member] = Evaluation(returns[member].cpu().numpy().copy(), True)
                elif (
                    target is not None and best_case is not None and can_cut_short(limit, best_step, target) and best_case[member] < target
                ):
                    results[member] = Evaluation(returns[member].cpu().numpy().copy(), False)
                else:
                    continue
                pending.discard(member)
        return results

    def keep(self, slots: Sequence[int]) -> None:
        self.envs.keep(slots)
        self.seeds = [self.seeds[i] for i in slots]
        self.targets = [self.targets[i] for i in slots]

    def _step(self, actions: Tensor, pending: set[int], obs: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """reward (K, N), done (K, N) and the next obs (K*N, ...); Gymnasium envs of members whose
        evaluation has ended are not stepped (their rows read reward 0, not done)."""
        envs, k, n = self.envs, self.envs.k, self.envs.n
        if envs.native is not None or len(pending) == k:
            step = envs.step(actions)
            return step.reward.view(k, n), (step.terminated | step.truncated).view(k, n), step.next_obs
        reward = torch.zeros((k, n), device=envs.device)
        done = torch.zeros((k, n), dtype=torch.bool, device=envs.device)
        obs = obs.clone()
        host = actions.cpu()
        for member in pending:
            rows = slice(member * n, (member + 1) * n)
            step = envs.parts[member].step(host[rows])
            reward[member], done[member], obs[rows] = step.reward, step.terminated | step.truncated, step.next_obs
        return reward, done, obs

    def close(self) -> None:
        self.envs.close()
