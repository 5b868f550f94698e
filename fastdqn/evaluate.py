"""Greedy evaluation: every episode runs at once in one vector env, one forward pass per step."""

from __future__ import annotations

import numpy as np
import torch

from fastdqn.agent import DQNAgent
from fastdqn.envs import EnvError, env_spaces, make_envs


class Evaluator:
    """Runs `episodes` greedy episodes, one per sub-env, reset with the same seed each time.

    The same seed makes evaluations comparable across a run: every policy faces the same starts.
    Keep one Evaluator for a run so the vector env is built once.
    """

    def __init__(self, env_id: str, episodes: int, seed: int, mode: str = "auto"):
        self.envs = make_envs(env_id, episodes, mode)
        self.episodes = episodes
        self.seed = seed

    @torch.no_grad()
    def run(self, agent: DQNAgent) -> np.ndarray:
        """Returns (episodes,) float64 undiscounted returns of the greedy policy."""
        obs, _ = self.envs.reset(seed=self.seed)
        returns = np.zeros(self.episodes)
        running = np.ones(self.episodes, dtype=bool)
        while running.any():
            actions = agent.act(torch.from_numpy(obs), 0.0).cpu().numpy()  # the one host sync per step
            obs, rewards, terminated, truncated, _ = self.envs.step(actions)
            returns += np.where(running, rewards, 0.0)
            running &= ~(terminated | truncated)
        return returns

    def close(self) -> None:
        self.envs.close()


def evaluate(agent: DQNAgent, env_id: str, episodes: int = 20, seed: int = 0, mode: str = "auto") -> list[float]:
    """Per-episode greedy returns of `agent` on `env_id`."""
    evaluator = Evaluator(env_id, episodes, seed, mode)
    spaces = env_spaces(evaluator.envs, env_id)
    if spaces != agent.spaces:
        evaluator.close()
        raise EnvError(
            f"the agent was trained on observations {agent.spaces.obs_shape} {agent.spaces.obs_dtype} with {agent.n_actions} actions, "
            f"but {env_id} has {spaces.obs_shape} {spaces.obs_dtype} with {spaces.n_actions}; evaluate it on the env it was trained on"
        )
    try:
        return [float(r) for r in evaluator.run(agent)]
    finally:
        evaluator.close()
