"""The classic tutorial's training loop, for the end-to-end baseline: one env, one transition at a time.

Written the tutorial's way (one `gymnasium` env, the deque buffer, `torch.tensor` on every act and
update, `torch.optim.Adam`, an elementwise gradient clamp, an MSE loss), with one change so the
comparison is fair: the target network is a real copy (the tutorial's `policy_net` and `target_net`
are the same module, which skips a network's worth of work and learns nothing stable). Its run length
is counted in env steps and its updates follow `train_every`/`gradient_steps`/`batch_size`, so it
runs exactly the replay ratio of the fastdqn case it is compared with.
"""

from __future__ import annotations

import copy
import math
import random
import time
from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np
import torch
from torch import nn, optim

from bench.baselines.tutorial_buffer import ReplayBufferQue, sample_tensors


class MLP(nn.Module):
    def __init__(self, n_states: int, n_actions: int, hidden_dim: int = 256):
        super().__init__()
        self.fc1 = nn.Linear(n_states, hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, hidden_dim)
        self.fc3 = nn.Linear(hidden_dim, n_actions)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.fc1(x))
        x = torch.relu(self.fc2(x))
        return self.fc3(x)


@dataclass
class TutorialSettings:
    env_id: str = "CartPole-v1"
    total_steps: int = 10_000
    batch_size: int = 64
    train_every: int = 1
    """Env steps between rounds of updates (the tutorial: 1)."""
    gradient_steps: int = 1
    learning_starts: int = 64
    hidden_dim: int = 256
    gamma: float = 0.95
    learning_rate: float = 1e-4
    epsilon_start: float = 0.95
    epsilon_end: float = 0.01
    epsilon_decay: int = 500
    target_update_episodes: int = 4
    capacity: int = 100_000
    seed: int = 10
    device: str = "cpu"
    log_every_steps: int = 1_000


@dataclass
class TutorialResult:
    env_steps: int
    updates: int
    episodes: int
    wall_seconds: float
    interval_sps: list[float] = field(default_factory=list)
    """Env steps/s of each `log_every_steps` interval, in order."""


class TutorialDQN:
    def __init__(self, n_states: int, n_actions: int, s: TutorialSettings):
        self.s = s
        self.n_actions = n_actions
        self.device = torch.device(s.device)
        self.policy_net = MLP(n_states, n_actions, s.hidden_dim).to(self.device)
        self.target_net = copy.deepcopy(self.policy_net)  # the tutorial aliases the two; a real copy here
        self.optimizer = optim.Adam(self.policy_net.parameters(), lr=s.learning_rate)
        self.memory = ReplayBufferQue(s.capacity)
        self.sample_count = 0

    def sample_action(self, state: np.ndarray) -> int:
        self.sample_count += 1
        s = self.s
        epsilon = s.epsilon_end + (s.epsilon_start - s.epsilon_end) * math.exp(-1.0 * self.sample_count / s.epsilon_decay)
        if random.random() > epsilon:
            with torch.no_grad():
                state_t = torch.tensor(state, device=self.device, dtype=torch.float32).unsqueeze(dim=0)
                q_values = self.policy_net(state_t)
                return int(q_values.max(1)[1].item())
        return random.randrange(self.n_actions)

    def update(self) -> None:
        if len(self.memory) < self.s.batch_size:
            return
        states, actions, rewards, next_states, dones = sample_tensors(self.memory, self.s.batch_size, self.device)
        q_values = self.policy_net(states).gather(dim=1, index=actions)
        next_q_values = self.target_net(next_states).max(1)[0].detach()
        expected_q_values = rewards + self.s.gamma * next_q_values * (1 - dones)
        loss = nn.MSELoss()(q_values, expected_q_values.unsqueeze(1))
        self.optimizer.zero_grad()
        loss.backward()
        for param in self.policy_net.parameters():
            assert param.grad is not None
            param.grad.data.clamp_(-1, 1)
        self.optimizer.step()


def run_tutorial(s: TutorialSettings) -> TutorialResult:
    """Train for `s.total_steps` env steps the tutorial's way; the clock starts after set-up."""
    random.seed(s.seed)
    np.random.seed(s.seed)
    torch.manual_seed(s.seed)
    env = gym.make(s.env_id)
    n_states = int(np.prod(env.observation_space.shape or (1,)))
    assert isinstance(env.action_space, gym.spaces.Discrete)
    n_actions = int(env.action_space.n)
    agent = TutorialDQN(n_states, n_actions, s)
    env_steps, updates, episodes = 0, 0, 0
    intervals: list[float] = []
    start = last = time.perf_counter()
    state, _ = env.reset(seed=s.seed)
    while env_steps < s.total_steps:
        action = agent.sample_action(state)
        next_state, reward, terminated, truncated, _ = env.step(action)
        done = terminated or truncated
        agent.memory.push((state, action, reward, next_state, done))  # the tutorial's merged done, kept
        state = next_state
        env_steps += 1
        if env_steps >= s.learning_starts and env_steps % s.train_every == 0:
            for _ in range(s.gradient_steps):
                agent.update()
                updates += 1
        if done:
            episodes += 1
            state, _ = env.reset()
            if episodes % s.target_update_episodes == 0:
                agent.target_net.load_state_dict(agent.policy_net.state_dict())
        if env_steps % s.log_every_steps == 0:
            now = time.perf_counter()
            intervals.append(s.log_every_steps / (now - last))
            last = now
    env.close()
    return TutorialResult(env_steps, updates, episodes, time.perf_counter() - start, intervals)
