"""`Config`'s value checks: every field's type, then its range, then the rules that span fields.
`Config.__post_init__` runs them, so a bad value from the CLI, a TOML file, a config.json or a
library call fails in one line before anything is allocated or written.
"""

from __future__ import annotations

import json
import math
from dataclasses import fields
from typing import TYPE_CHECKING, Any

from fastdqn.errors import ConfigError

if TYPE_CHECKING:
    from fastdqn.config import Config


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
    "learning_rate_end": (0.0, False, math.inf, True, " (0 decays to a standstill) or none"),
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


def _field_kinds(cfg: Config) -> dict[str, str]:
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
        for f in fields(cfg):
            _KINDS[f.name] = kinds.get(str(f.type), "other")
    return _KINDS


def check_types(cfg: Config) -> None:
    for name, kind in _field_kinds(cfg).items():
        value = getattr(cfg, name)
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
            object.__setattr__(cfg, name, float(value))  # an int from JSON or TOML: one type in memory and in config.json
        if kind == "bool" and not isinstance(value, bool):
            raise ConfigError(
                f"{name}={value!r} must be true or false, not {_kind_of(value)}; pass {_option(name)} or --no-{name.replace('_', '-')}"
            )
        if kind in ("str", "str?") and not isinstance(value, str):
            raise ConfigError(f"{name}={value!r} must be a string{' or none' if kind == 'str?' else ''}, not {_kind_of(value)}")
    if not isinstance(cfg.extra, dict):
        raise ConfigError(f"extra={cfg.extra!r} must be a table (a dict) of notes, not {_kind_of(cfg.extra)}")
    try:
        json.dumps(cfg.extra, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise ConfigError(
            f"extra holds a value config.json cannot store ({error}); keep to strings, finite numbers, lists and tables"
        ) from None
    if not isinstance(cfg.log, str | list | tuple) or not all(isinstance(item, str) for item in cfg.log):
        raise ConfigError(f"log={cfg.log!r} must be a list of tracker names (tensorboard, wandb)")
    if "\0" in cfg.out_dir:
        raise ConfigError(f"out_dir={cfg.out_dir!r} holds a NUL character; pass --out with a plain folder path")
    if cfg.run_name is not None:
        from fastdqn.runfolder import check_run_name  # the file system's rules live with the run folder

        check_run_name(cfg.run_name, cfg.out_dir)


def check_numbers(cfg: Config) -> None:
    """Every numeric field against its range: NaN and inf fail every float check here."""
    for name in _POSITIVE_INTS:
        value = getattr(cfg, name)
        if value <= 0:
            raise ConfigError(f"{name}={value!r} must be a positive integer; pass {_option(name)} N with N >= 1")
    for name in _NONNEGATIVE_INTS:
        value = getattr(cfg, name)
        if value < 0:
            raise ConfigError(f"{name}={value!r} must be an integer >= 0; pass {_option(name)} N with N >= 0 (0 turns it off)")
    if not 0 <= cfg.seed < 2**32:
        raise ConfigError(f"seed={cfg.seed} must lie in [0, 2**32 - 1] (numpy's seed range); pass --seed N")
    for name, (low, low_open, high, high_open, note) in _FLOAT_RANGES.items():
        value = getattr(cfg, name)
        if value is None:
            continue
        above = value > low if low_open else value >= low
        below = value < high if high_open else value <= high
        if not (math.isfinite(value) and above and below):
            raise ConfigError(f"{name}={value!r} must {_describe(low, low_open, high, high_open)}{note}; pass {_option(name)} X")


def check_actors(cfg: Config) -> None:
    if cfg.actors == 0:
        if cfg.ray_address is not None:
            raise ConfigError(f"ray_address={cfg.ray_address!r} needs actors to send to it; add --actors N or drop --ray-address")
        return
    if cfg.env_backend == "torch" or cfg.fuse_step == "on":
        raise ConfigError("--actors runs Gymnasium envs in the actor processes; drop --env-backend torch / --fuse-step on")
    if cfg.replay_storage == "frames":
        raise ConfigError("--actors stores rows from many actors in a tensor ring; drop --replay-storage frames")


def check_log(cfg: Config) -> None:
    # config.json and TOML hand over lists; the frozen field keeps a tuple so that equality holds
    names = (cfg.log,) if isinstance(cfg.log, str) else tuple(cfg.log)
    object.__setattr__(cfg, "log", tuple(dict.fromkeys(names)))
    for name in cfg.log:
        if name not in ("tensorboard", "wandb"):
            raise ConfigError(
                f"log={name!r} is not one of tensorboard, wandb; pass --log tensorboard and/or --log wandb (metrics.csv is always written)"
            )
