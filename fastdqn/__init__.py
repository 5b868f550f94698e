"""fastdqn: DQN with vector envs, a device-resident replay ring and a compiled update.

The public names are imported on first use (PEP 562): `import fastdqn.cli` or `fastdqn.config`
must not pay for torch, gymnasium and tensordict (about 2 s on a small CPU) when the command is
`--help` or `info`. `import fastdqn; fastdqn.train(cfg)` works as before.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastdqn.agent import DQNAgent
    from fastdqn.buffer import Batch, ReplayBuffer
    from fastdqn.config import Config, ConfigError, preset
    from fastdqn.envs import EnvSpaces, make_envs
    from fastdqn.evaluate import evaluate
    from fastdqn.group import train_many
    from fastdqn.run_state import RunResult
    from fastdqn.train import train

__version__ = "0.1.0"

_HOMES = {
    "Batch": "fastdqn.buffer",
    "Config": "fastdqn.config",
    "ConfigError": "fastdqn.config",
    "DQNAgent": "fastdqn.agent",
    "EnvSpaces": "fastdqn.envs",
    "ReplayBuffer": "fastdqn.buffer",
    "RunResult": "fastdqn.run_state",
    "evaluate": "fastdqn.evaluate",
    "make_envs": "fastdqn.envs",
    "preset": "fastdqn.config",
    "train": "fastdqn.train",
    "train_many": "fastdqn.group",
}
"""Each public name and the module it lives in."""

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


class _Package(types.ModuleType):
    """`fastdqn` itself: importing the submodule `fastdqn.train` (or `.evaluate`) must not rebind the function.

    The import system sets a loaded submodule as an attribute of its package, so after any
    `from fastdqn.train import ...` the name `fastdqn.train` would be the module, not the function the
    eager `from fastdqn.train import train` used to leave there.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if _HOMES.get(name) == f"{__name__}.{name}" and isinstance(value, types.ModuleType):
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'fastdqn' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOMES})
