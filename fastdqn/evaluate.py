"""Greedy evaluation: every episode runs at once in one vector env, one forward pass per step."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from fastdqn.agent import DQNAgent
from fastdqn.config import Config
from fastdqn.envs import DeviceVectorEnv, EnvError, make_envs, resolve_backend

CHECK_EVERY = 16
"""Vector steps between looks at whether every episode has ended (each look is a host sync on CUDA)."""


class Evaluation(NamedTuple):
    returns: np.ndarray
    """(episodes,) float64 undiscounted greedy returns; partial where `complete` is False."""
    complete: bool
    """False when the evaluation stopped early because its mean could no longer reach the target."""


def can_cut_short(limit: int | None, best_step: float | None, target: float | None) -> bool:
    """Whether an evaluation may stop early: the env's time limit and best step reward are known, and
    some episode could reach `target` (CartPole's 475 on Acrobot would otherwise cut every one at once)."""
    if limit is None or best_step is None or target is None:
        return False
    return (limit * best_step if best_step > 0 else best_step) >= target


def best_future(limit: int, best_step: float, steps: int) -> float:
    """The most an episode still running after `steps` steps can yet earn: the best step reward every
    step until its time limit, or, where no step pays more than 0, ending at the next step."""
    return max(limit - steps, 1) * best_step if best_step > 0 else best_step


class Evaluator:
    """Runs `episodes` greedy episodes, one per sub-env, reset with the same seed each time.

    The same seed makes evaluations comparable across a run: every policy faces the same starts.
    Keep one Evaluator for a run so the vector env is built once. Envs whose episode has ended go on
    stepping (their returns no longer count) until every episode has.
    """

    def __init__(self, envs: DeviceVectorEnv, seed: int):
        self.envs = envs
        self.episodes = envs.num_envs
        self.seed = seed

    @classmethod
    def for_run(cls, cfg: Config, device: torch.device) -> Evaluator:
        """The evaluator of a training run: `cfg.eval_episodes` envs of the run's backend, seeded apart from training."""
        backend = resolve_backend(cfg.env_id, cfg.num_envs, cfg.env_backend)
        envs = make_envs(cfg.env_id, cfg.eval_episodes, backend, device, cfg.vectorization_mode, training=False)
        return cls(envs, cfg.seed + 100_000)

    @torch.no_grad()
    def run(self, agent: DQNAgent, target: float | None = None) -> Evaluation:
        """Greedy returns of every episode; with `target`, stops once their mean can no longer reach it.

        The bound counts every unfinished episode at the most it can still earn (the env's best step
        reward until its time limit; ending at once where steps pay nothing or cost), so an evaluation
        is only cut short when it would fail anyway, never when it would pass: a mean that reaches
        `target` is always that of complete episodes. A target no episode can reach cuts nothing.
        """
        obs = self.envs.reset(seed=self.seed)
        returns = torch.zeros(self.episodes, dtype=torch.float64, device=self.envs.device)
        running = torch.ones(self.episodes, dtype=torch.bool, device=self.envs.device)
        limit, best_step = self.envs.max_episode_steps, self.envs.max_step_reward
        can_stop = can_cut_short(limit, best_step, target)
        steps = 0
        while True:
            step = self.envs.step(agent.act(obs, 0.0))
            returns += step.reward * running
            running &= ~(step.terminated | step.truncated)
            obs = step.next_obs
            steps += 1
            if steps % CHECK_EVERY != 0 and self.envs.device.type != "cpu":
                continue
            if not bool(running.any()):  # a host sync on CUDA, every CHECK_EVERY steps
                return Evaluation(returns.cpu().numpy(), True)
            if can_stop:
                assert limit is not None and best_step is not None and target is not None
                best_case = returns + running * best_future(limit, best_step, steps)
                if float(best_case.mean()) < target:
                    return Evaluation(returns.cpu().numpy(), False)

    def close(self) -> None:
        self.envs.close()


def evaluate(
    agent: DQNAgent, env_id: str, episodes: int = 20, seed: int = 0, mode: str = "auto", backend: str | None = None
) -> list[float]:
    """Per-episode greedy returns of `agent` on `env_id` (`backend`: the agent's training backend by default)."""
    backend = resolve_backend(env_id, agent.cfg.num_envs, backend or agent.cfg.env_backend)
    evaluator = Evaluator(make_envs(env_id, episodes, backend, agent.device, mode, training=False), seed)
    if evaluator.envs.spaces != agent.spaces:
        spaces = evaluator.envs.spaces
        evaluator.close()
        raise EnvError(
            f"the agent was trained on observations {agent.spaces.obs_shape} {agent.spaces.obs_dtype} with {agent.n_actions} actions, "
            f"but {env_id} has {spaces.obs_shape} {spaces.obs_dtype} with {spaces.n_actions}; evaluate it on the env it was trained on"
        )
    try:
        return [float(r) for r in evaluator.run(agent).returns]
    finally:
        evaluator.close()
