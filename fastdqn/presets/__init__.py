"""Presets are data: one TOML file per preset in this folder, chosen by the env id a run trains on.

A file sets the `Config` fields that differ from `Config()`'s values, as top-level keys (the format
`fastdqn config` writes and `--config` reads), and ends with a `[meta]` table that only this loader
reads: the env ids the preset serves (`fnmatch` patterns, so `ALE/*` is every ALE game), the budget
it was validated at, and the result measured there, word for word as `fastdqn presets` lists it.
An env id no preset claims gets `default`, the general preset, and the CLI says so in one line.
"""

from __future__ import annotations

import fnmatch
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from fastdqn.config import Config, ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # the same parser, before it joined the standard library
    import tomli as tomllib

GENERAL = "default"
"""The preset for an env id that no preset file claims."""


@dataclass(frozen=True)
class PresetInfo:
    name: str
    env_ids: tuple[str, ...]
    """Env ids (fnmatch patterns) this preset is picked for when no --preset is given."""
    budget: int
    """Env steps the preset was tuned and validated at: its total_steps."""
    validated: str
    """The result measured at that budget, or 'not yet validated'."""
    description: str


def _files() -> dict[str, Path]:
    folder = resources.files(__name__)
    return {Path(entry.name).stem: Path(str(entry)) for entry in folder.iterdir() if entry.name.endswith(".toml")}


def names() -> list[str]:
    """Every shipped preset, the general default first, then alphabetical."""
    return sorted(_files(), key=lambda name: (name != GENERAL, name))


def _read(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The preset's Config values (checked against Config's types) and its `[meta]` table."""
    from fastdqn.tomlconfig import check_values

    files = _files()
    if name not in files:
        raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(names())} (listed by `fastdqn presets`)")
    path = files[name]
    text = path.read_text()
    data = tomllib.loads(text)
    meta = data.pop("meta", {})
    return check_values(path, text, data), meta


def load_preset(name: str) -> Config:
    values, _ = _read(name)
    return Config(**{**values, "preset": name})


def info(name: str) -> PresetInfo:
    values, meta = _read(name)
    return PresetInfo(
        name=name,
        env_ids=tuple(meta.get("env_ids", ())),
        budget=int(values.get("total_steps", Config().total_steps)),
        validated=str(meta.get("validated", "not yet validated")),
        description=str(meta.get("description", "")),
    )


def preset_for_env(env_id: str) -> str | None:
    """The preset that claims `env_id` (`module:Env-v0` is matched as `Env-v0`), or None."""
    bare = env_id.rpartition(":")[2]
    for name in names():
        if any(fnmatch.fnmatchcase(bare, pattern) for pattern in info(name).env_ids):
            return name
    return None
