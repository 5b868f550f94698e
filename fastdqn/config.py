"""The one source of defaults: a frozen `Config` dataclass and the named presets built from it.

The CLI builds its options from these fields, `config.json` in a run folder is `asdict(cfg)`, and a
preset is a TOML file of field values over `Config()`'s (fastdqn/presets/). Every check of a user-settable value lives in
`__post_init__`, so a bad value fails before anything is allocated or written.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, get_args

Device = str  # "cpu", "cuda", "cuda:1", "auto"
CompileChoice = Literal["auto", "on", "off"]
CompileMode = Literal["default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"]
NetworkKind = Literal["mlp", "dueling", "nature_cnn"]
LossKind = Literal["huber", "mse"]
ScheduleKind = Literal["linear", "exponential", "piecewise"]
ReplayStorage = Literal["auto", "tensor", "frames"]
VectorizationMode = Literal["auto", "vector_entry_point", "sync", "async"]
EnvBackend = Literal["auto", "gymnasium", "torch"]


class FastDQNError(Exception):
    """An error a user can cause or act on: the CLI prints its message as one line and exits with `exit_code`."""

    exit_code = 2


class ConfigError(FastDQNError, ValueError):
    """A user-settable value is out of range; the message names the field, the value and the fix."""


SHAPE_FIELDS = ("env_id", "network", "hidden_dim", "batch_size", "num_envs", "buffer_capacity", "n_step")
"""Fields that change a tensor's shape: one value per group of many runs."""


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


def _kind_of(value: Any) -> str:
    return "a bool" if isinstance(value, bool) else f"a {type(value).__name__}"


def _describe(low: float, low_open: bool, high: float, high_open: bool) -> str:
    if math.isinf(low) and math.isinf(high):
        return "be a finite number"
    if math.isinf(high):
        return f"be a finite number {'>' if low_open else '>='} {low:g}"
    return f"lie in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"


_FLOAT_RANGES: dict[str, tuple[float, bool, float, bool, str]] = {
    # name: (low, low excluded, high, high excluded, what the bound means)
    "gamma": (0.0, False, 1.0, False, ""),
    "learning_rate": (0.0, True, math.inf, True, ""),
    "adam_eps": (0.0, True, math.inf, True, " (Adam divides by it)"),
    "max_grad_norm": (0.0, False, math.inf, True, " (0 turns it off)"),
    "grad_clip_value": (0.0, False, math.inf, True, " (0 turns it off)"),
    "tau": (0.0, True, 1.0, False, "; 1 is a hard copy"),
    "per_alpha": (0.0, False, math.inf, True, " (0 samples uniformly)"),
    "per_beta_start": (0.0, False, 1.0, False, ""),
    "per_eps": (0.0, True, math.inf, True, " (so that no row has probability 0)"),
    "epsilon_start": (0.0, False, 1.0, False, ""),
    "epsilon_end": (0.0, False, 1.0, False, ""),
    "epsilon_late": (0.0, False, 1.0, False, ""),
    "actor_epsilon": (0.0, False, 1.0, False, ""),
    "stop_at_return": (-math.inf, True, math.inf, True, " or none"),
}
"""Every float field's valid range; NaN and inf lie outside all of them."""
_POSITIVE_INTS = (
    "num_envs",
    "total_steps",
    "hidden_dim",
    "buffer_capacity",
    "batch_size",
    "train_every",
    "gradient_steps",
    "target_update_every",
    "n_step",
    "epsilon_decay_steps",
    "epsilon_late_steps",
    "eval_episodes",
    "log_every_steps",
    "checkpoint_keep",
    "weights_every",
    "chunk_steps",
)
_NONNEGATIVE_INTS = ("learning_starts", "eval_every_steps", "torch_threads", "checkpoint_every_steps", "actors", "ray_cpus")
_KINDS: dict[str, str] = {}


def _field_kinds() -> dict[str, str]:
    """Field name -> int, float, float?, bool, str, str? or other (Literal choices, log, extra), read once."""
    if not _KINDS:
        kinds = {
            "int": "int",
            "float": "float",
            "float | None": "float?",
            "bool": "bool",
            "str": "str",
            "Device": "str",
            "str | None": "str?",
        }
        for f in fields(Config):
            _KINDS[f.name] = kinds.get(str(f.type), "other")
    return _KINDS


@dataclass(frozen=True)
class Config:
    # environment
    env_id: str = "CartPole-v1"
    """Gymnasium id; `module:Env-v0` imports `module` first so its registration runs."""
    num_envs: int = 16
    """Environments stepped together in one vector env."""
    env_backend: EnvBackend = "gymnasium"
    """`torch` runs CartPole-v1, Acrobot-v1 and MountainCar-v0 as tensors on the training device;
    `gymnasium` steps Gymnasium's numpy envs; `auto` picks torch for those ids from 256 envs up."""
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
    (Mnih et al. 2015; picked for any (C, 84, 84) image observation)."""
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
    """Adam step size."""
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
        self._check_types()
        self._check_numbers()
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
        self._check_log()
        self._check_actors()

    def _check_types(self) -> None:
        for name, kind in _field_kinds().items():
            value = getattr(self, name)
            if value is None and kind in ("float?", "str?"):
                continue
            if kind == "int" and (not isinstance(value, int) or isinstance(value, bool)):
                raise ConfigError(f"{name}={value!r} must be an integer, not {_kind_of(value)}; pass {_option(name)} N")
            if kind in ("float", "float?"):
                if not isinstance(value, int | float) or isinstance(value, bool):
                    none = " or none" if kind == "float?" else ""
                    raise ConfigError(f"{name}={value!r} must be a number{none}, not {_kind_of(value)}; pass {_option(name)} X")
                if isinstance(value, int) and not -(2**1023) < value < 2**1023:
                    raise ConfigError(f"{name}={value} is too large for a float; pass {_option(name)} X with a finite X")
                object.__setattr__(self, name, float(value))  # an int from JSON or TOML: one type in memory and in config.json
            if kind == "bool" and not isinstance(value, bool):
                raise ConfigError(
                    f"{name}={value!r} must be true or false, not {_kind_of(value)}; pass {_option(name)} or --no-{name.replace('_', '-')}"
                )
            if kind in ("str", "str?") and not isinstance(value, str):
                raise ConfigError(f"{name}={value!r} must be a string{' or none' if kind == 'str?' else ''}, not {_kind_of(value)}")
        if not isinstance(self.extra, dict):
            raise ConfigError(f"extra={self.extra!r} must be a table (a dict) of notes, not {_kind_of(self.extra)}")
        try:
            json.dumps(self.extra, allow_nan=False)
        except (TypeError, ValueError) as error:
            raise ConfigError(
                f"extra holds a value config.json cannot store ({error}); keep to strings, finite numbers, lists and tables"
            ) from None
        if not isinstance(self.log, str | list | tuple) or not all(isinstance(item, str) for item in self.log):
            raise ConfigError(f"log={self.log!r} must be a list of tracker names (tensorboard, wandb)")
        if "\0" in self.out_dir:
            raise ConfigError(f"out_dir={self.out_dir!r} holds a NUL character; pass --out with a plain folder path")
        if self.run_name is not None:
            from fastdqn.runfolder import check_run_name  # the file system's rules live with the run folder

            check_run_name(self.run_name, self.out_dir)

    def _check_numbers(self) -> None:
        """Every numeric field against its range: NaN and inf fail every float check here."""
        for name in _POSITIVE_INTS:
            value = getattr(self, name)
            if value <= 0:
                raise ConfigError(f"{name}={value!r} must be a positive integer; pass {_option(name)} N with N >= 1")
        for name in _NONNEGATIVE_INTS:
            value = getattr(self, name)
            if value < 0:
                raise ConfigError(f"{name}={value!r} must be an integer >= 0; pass {_option(name)} N with N >= 0 (0 turns it off)")
        if not 0 <= self.seed < 2**32:
            raise ConfigError(f"seed={self.seed} must lie in [0, 2**32 - 1] (numpy's seed range); pass --seed N")
        for name, (low, low_open, high, high_open, note) in _FLOAT_RANGES.items():
            value = getattr(self, name)
            if value is None:
                continue
            above = value > low if low_open else value >= low
            below = value < high if high_open else value <= high
            if not (math.isfinite(value) and above and below):
                raise ConfigError(f"{name}={value!r} must {_describe(low, low_open, high, high_open)}{note}; pass {_option(name)} X")

    def _check_actors(self) -> None:
        if self.actors == 0:
            if self.ray_address is not None:
                raise ConfigError(f"ray_address={self.ray_address!r} needs actors to send to it; add --actors N or drop --ray-address")
            return
        if self.env_backend == "torch" or self.fuse_step == "on":
            raise ConfigError("--actors runs Gymnasium envs in the actor processes; drop --env-backend torch / --fuse-step on")
        if self.replay_storage == "frames":
            raise ConfigError("--actors stores rows from many actors in a tensor ring; drop --replay-storage frames")

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

    def _check_log(self) -> None:
        # config.json and TOML hand over lists; the frozen field keeps a tuple so that equality holds
        names = (self.log,) if isinstance(self.log, str) else tuple(self.log)
        object.__setattr__(self, "log", tuple(dict.fromkeys(names)))
        for name in self.log:
            if name not in ("tensorboard", "wandb"):
                raise ConfigError(
                    f"log={name!r} is not one of tensorboard, wandb; pass --log tensorboard and/or --log wandb (metrics.csv is always written)"
                )


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
