"""fastdqn: DQN with vector envs, a device-resident replay ring and a compiled update."""

from fastdqn.agent import DQNAgent
from fastdqn.buffer import Batch, ReplayBuffer
from fastdqn.config import Config, ConfigError, preset
from fastdqn.envs import EnvSpaces, make_envs
from fastdqn.evaluate import evaluate
from fastdqn.group import train_many
from fastdqn.run_state import RunResult
from fastdqn.train import train

__version__ = "0.1.0"

__all__ = [
    "Batch",
    "Config",
    "ConfigError",
    "DQNAgent",
    "EnvSpaces",
    "ReplayBuffer",
    "RunResult",
    "evaluate",
    "make_envs",
    "preset",
    "train",
    "train_many",
]
