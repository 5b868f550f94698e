"""The one source of defaults: a frozen `Config` dataclass and the named presets built from it.

The CLI builds its options from these fields, `config.json` in a run folder is `asdict(cfg)`, and a
preset is a TOML file of field values over `Config()`'s (fastdqn/presets/). Every check of a
user-settable value runs in `__post_init__` (the type and range checks are in config_checks.py), so a
bad value fails before anything is allocated or written.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, get_args

from fastdqn.config_checks import check_actors, check_log, check_numbers, check_types
from fastdqn.errors import ConfigError as ConfigError
from fastdqn.errors import FastDQNError as FastDQNError

Device = str  # "cpu", "cuda", "cuda:1", "auto"
CompileChoice = Literal["auto", "on", "off"]
CompileMode = Literal["default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"]
NetworkKind = Literal["mlp", "dueling", "nature_cnn"]
LossKind = Literal["huber", "mse"]
ScheduleKind = Literal["linear", "exponential", "piecewise"]
ReplayStorage = Literal["auto", "tensor", "frames"]
VectorizationMode = Literal["auto", "vector_entry_point", "sync", "async"]
EnvBackend = Literal["auto", "gymnasium", "torch"]


SHAPE_FIELDS = ("env_id", "network", "hidden_dim", "batch_size", "num_envs", "buffer_capacity", "n_step")
"""Fields that change a tensor's shape: one value per group of many runs."""


@dataclass(frozen=True)
class Config:
    # environment
    env_id: str = "CartPole-v1"
    """Gymnasium id; `module:Env-v0` imports `module` first so its registration runs."""
    num_envs: int = 16
    """Environments stepped together in one vector env."""
    env_backend: EnvBackend = "gymnasium"
    """`torch` runs CartPole-v1, Acrobot-v1 and MountainCar-v0 as tensors on the training device;
    `gymnasium` steps Gymnasium's numpy envs; `auto` picks torch where its step is the faster one: CartPole-v1 from
    256 envs, Acrobot-v1 from 16, MountainCar-v0 from 4 (`fastdqn.envs.AUTO_TORCH_MIN_ENVS`)."""
    vectorization_mode: VectorizationMode = "auto"
    """Gymnasium backend: `auto` uses the env's own vectorized class where it has one, else `sync`."""
    seed: int = 1
    """Seeds torch, numpy, python, the envs and the buffer's sampler."""

    # run length and device
    total_steps: int = 100_000
    """Env steps (summed over envs) before the run ends."""
    device: Device = "auto"
    """`cpu`, `cuda`, `cuda:N`, or `auto` (cuda when available)."""
    compile: CompileChoice = "auto"
    """`torch.compile` the update: `auto` compiles on CUDA only, where it pays."""
    compile_mode: CompileMode = "default"
    """Mode passed to `torch.compile`."""
    fuse_step: CompileChoice = "auto"
    """Native envs, one-step replay: run act + env step + replay write as one compiled step (a
    replayed CUDA graph on CUDA); `auto` fuses on CUDA only, `on` compiles it on CPU too."""
    torch_threads: int = 1
    """Intra-op CPU threads (0 keeps torch's default); small nets run fastest on one."""

    # network
    network: NetworkKind = "mlp"
    """`mlp` (two hidden layers), `dueling` (shared trunk, value + advantage heads), or `nature_cnn`
    (Mnih et al. 2015; picked for any (C, 84, 84) image observation). Every network sees uint8
    observations (pixels) scaled by 1/255."""
    hidden_dim: int = 64
    """Units in each hidden layer of the MLPs (the Nature CNN always has 512)."""

    # replay
    buffer_capacity: int = 100_000
    """Transitions kept in the replay ring."""
    batch_size: int = 64
    """Transitions per gradient step."""
    learning_starts: int = 1_000
    """Env steps collected before the first gradient step."""
    train_every: int = 1
    """Vector steps between rounds of updates."""
    gradient_steps: int = 4
    """Gradient steps per round; replay ratio = gradient_steps * batch_size / (train_every * num_envs)."""
    replay_storage: ReplayStorage = "auto"
    """`frames` stores each frame of a (stack, H, W) uint8 observation once; `auto` does so for ALE/ ids."""

    # learning
    gamma: float = 0.98
    """Discount per env step."""
    learning_rate: float = 5e-3
    """Adam step size (at env step 0 when `learning_rate_end` is set)."""
    learning_rate_end: float | None = None
    """Adam step size at total_steps, reached linearly from `learning_rate` at env step 0 (None: constant)."""
    adam_eps: float = 1e-8
    """Adam denominator epsilon."""
    loss: LossKind = "huber"
    """TD loss: `huber` (smooth L1, delta 1) or `mse` (the tutorial's)."""
    double_dqn: bool = True
    """Pick the next action with the online net, value it with the target net."""
    max_grad_norm: float = 10.0
    """Clip gradients to this global L2 norm (0 turns it off)."""
    grad_clip_value: float = 0.0
    """Clamp every gradient element to [-v, v], as the tutorial does (0 turns it off)."""
    target_update_every: int = 128
    """Gradient steps between target-network updates."""
    tau: float = 1.0
    """Target update weight: 1 is a hard copy, below 1 Polyak averaging."""
    n_step: int = 1
    """Env steps summed into each stored return before bootstrapping (1 is plain one-step DQN)."""
    per: bool = False
    """Prioritized replay: sample rows in proportion to (|TD error| + per_eps) ** per_alpha."""
    per_alpha: float = 0.6
    """Priority exponent (0 samples uniformly)."""
    per_beta_start: float = 0.4
    """Importance-weight exponent at env step 0, annealed linearly to 1 at total_steps."""
    per_eps: float = 1e-6
    """Added to every |TD error| so that no stored row has probability 0."""

    # exploration, by env steps
    exploration: ScheduleKind = "linear"
    """`linear` from start to end over decay steps, or the tutorial's `exponential`."""
    epsilon_start: float = 1.0
    """Epsilon at env step 0."""
    epsilon_end: float = 0.04
    """Final epsilon."""
    epsilon_decay_steps: int = 8_000
    """Linear: env steps to reach the end value. Exponential: the decay constant."""
    epsilon_late: float = 0.01
    """Piecewise only: epsilon reached `epsilon_late_steps` env steps after the linear decay ends."""
    epsilon_late_steps: int = 4_000_000
    """Piecewise only: env steps of the second linear segment, from epsilon_end to epsilon_late."""

    # evaluation, logging, output
    eval_every_steps: int = 500
    """Env steps between greedy evaluations (0 turns them off)."""
    eval_episodes: int = 20
    """Episodes per greedy evaluation, run as one vector env."""
    stop_at_return: float | None = 475.0
    """Stop once a greedy evaluation's mean return reaches this (None: run to total_steps)."""
    log_every_steps: int = 2_000
    """Env steps between metric rows and progress refreshes."""
    checkpoint_every_steps: int = 50_000
    """Env steps between resumable checkpoints (0: only at the end)."""
    checkpoint_keep: int = 3
    """Resumable checkpoints kept in `checkpoints/` (older ones are deleted)."""
    save_buffer: bool = True
    """Put the replay buffer's filled rows into checkpoints, for an exact resume."""
    out_dir: str = "runs"
    """Parent folder of run folders."""
    run_name: str | None = None
    """Run folder name (default: `<env>-s<seed>-<time>`)."""
    save_plot: bool = True
    """Write `returns.png` into the run folder at the end."""
    preset: str = "cartpole"
    """Name of the preset these values started from (informational)."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Free-form notes saved with the run."""
    log: tuple[str, ...] = ()
    """Trackers that get every metrics.csv row beside the CSVs: `tensorboard`, `wandb` (each an extra to install)."""
    wandb_project: str = "fastdqn"
    """W&B project for `--log wandb`; WANDB_MODE=offline keeps the run on disk, in RUN/wandb/."""
    wandb_entity: str | None = None
    """W&B user or team for `--log wandb` (None: your default entity)."""

    # distributed actors (Ray, the `ray` extra)
    actors: int = 0
    """Ray actor processes collecting for one learner, Ape-X style (0: the single-process loop)."""
    ray_address: str | None = None
    """With --actors: `auto` or HOST:PORT joins a running Ray cluster; None starts a local runtime."""
    ray_cpus: int = 0
    """With --actors: cores the local Ray runtime may use (0: all of this machine's)."""
    weights_every: int = 50
    """With --actors: learner updates between weight broadcasts to the actors."""
    chunk_steps: int = 256
    """With --actors: env steps per chunk an actor sends (rounded up to whole vector steps of num_envs)."""
    actor_epsilon: float = 0.4
    """With --actors N >= 2: actor i explores with actor_epsilon ** (1 + 7 i / (N - 1)) (Ape-X); one actor follows the schedule."""

    def __post_init__(self) -> None:
        # Types first: a hand-edited config.json, a TOML file or a library call may hand over a
        # string or a bool where a number belongs, and every range check below assumes numbers.
        check_types(self)
        check_numbers(self)
        if self.batch_size > self.buffer_capacity:
            raise ConfigError(
                f"batch_size={self.batch_size} exceeds buffer_capacity={self.buffer_capacity}; "
                f"raise --buffer-capacity or lower --batch-size"
            )
        if self.learning_starts >= self.total_steps:
            raise ConfigError(
                f"total_steps={self.total_steps} is not above learning_starts={self.learning_starts}, "
                f"so no update would run; raise --total-steps or lower --learning-starts"
            )
        for name, kind in (
            ("compile", CompileChoice),
            ("compile_mode", CompileMode),
            ("network", NetworkKind),
            ("fuse_step", CompileChoice),
        ):
            self._check_choice(name, kind)
        for name, kind in (("loss", LossKind), ("exploration", ScheduleKind)):
            self._check_choice(name, kind)
        self._check_choice("vectorization_mode", VectorizationMode)
        self._check_choice("env_backend", EnvBackend)
        self._check_choice("replay_storage", ReplayStorage)
        if not self.device or not (self.device in ("auto", "cpu") or self.device.startswith("cuda")):
            raise ConfigError(f"device={self.device!r} is not one of cpu, cuda, cuda:N, auto")
        check_log(self)
        check_actors(self)

    def _check_choice(self, name: str, kind: Any) -> None:
        choices = get_args(kind)
        if getattr(self, name) not in choices:
            raise ConfigError(f"{name}={getattr(self, name)!r} is not one of {', '.join(choices)}")

    @property
    def replay_ratio(self) -> float:
        """Sampled transitions per collected env step."""
        return self.gradient_steps * self.batch_size / (self.train_every * self.num_envs)

    def replace(self, **changes: Any) -> Config:
        return dataclasses.replace(self, **changes)

    def to_json(self) -> str:
        # allow_nan=False: the last guard against a non-standard NaN or Infinity in config.json
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True, allow_nan=False)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Config:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown config fields {unknown}; known fields are listed by `fastdqn train --help`")
        return cls(**values)

    @classmethod
    def load(cls, path: str | Path) -> Config:
        try:
            values = json.loads(Path(path).read_bytes().decode("utf-8"))
        except UnicodeDecodeError:
            raise ConfigError(
                f"{path} is not UTF-8 text, so not a config.json fastdqn wrote; pass a run's config.json or a *.toml file"
            ) from None
        except json.JSONDecodeError as error:
            raise ConfigError(f"{path} is not valid JSON ({error}); pass a run's config.json or a *.toml file") from None
        if not isinstance(values, dict):
            raise ConfigError(f"{path} holds a JSON {type(values).__name__}, not the object of fields a config.json has")
        return cls.from_dict(values)


def preset(name: str) -> Config:
    """The named preset: a TOML file in fastdqn/presets/ over `Config()`'s values (`fastdqn presets` lists them)."""
    from fastdqn.presets import load_preset

    return load_preset(name)


def preset_names() -> list[str]:
    from fastdqn.presets import names

    return names()


def __getattr__(name: str) -> Any:
    # PRESETS is read from the preset folder on first use: fastdqn.presets imports this module
    if name == "PRESETS":
        return tuple(preset_names())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
