"""The command line's view of `Config`: `train`'s options generated from its fields, the values
given parsed as the fields' types, the preset picked, and grids and `--seeds` expanded into configs.

Nothing here imports torch (`--help` stays fast); `Config` stays the one source of defaults and checks.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import itertools
import math
import typing
from pathlib import Path
from typing import Annotated, Any, cast

import typer
from rich.console import Console

from fastdqn import config as config_module
from fastdqn.config import SHAPE_FIELDS, Config, ConfigError, preset

console = Console()
err_console = Console(stderr=True)
"""The CLI's two consoles, shared by cli.py and cli_train.py (one width and theme for every command)."""

BOOL_WORDS = {"true": True, "on": True, "yes": True, "1": True, "false": False, "off": False, "no": False, "0": False}
"""How a bool field's value may be written as text (`--variant "double_dqn=false"`)."""

# Option names that differ from the field names (the short forms users type).
FLAG_NAMES = {"env_id": ["--env", "--env-id"], "out_dir": ["--out", "--out-dir"]}
NOT_OPTIONS = {"extra", "preset"}


def field_docs() -> dict[str, str]:
    """Attribute docstrings of `Config`, read from its source (Python keeps none at runtime)."""
    tree = ast.parse(inspect.getsource(config_module))
    docs: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == "Config":
            for stmt, nxt in itertools.pairwise(node.body):
                if not (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and isinstance(nxt, ast.Expr)):
                    continue
                if isinstance(nxt.value, ast.Constant) and isinstance(nxt.value.value, str):
                    docs[stmt.target.id] = nxt.value.value.strip()
    return docs


def parse_optional_float(name: str, text: str) -> float | None:
    if text.strip().lower() in ("none", "off", ""):
        return None
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"{name}={text!r} is not a number; pass a number or 'none'") from None


def train_options() -> list[inspect.Parameter]:
    hints = typing.get_type_hints(Config)
    docs = field_docs()
    cartpole = preset("cartpole")  # CartPole-v1's, the env a bare `fastdqn train` trains on
    parameters = []
    for f in dataclasses.fields(Config):
        if f.name in NOT_OPTIONS:
            continue
        hint = hints[f.name]
        base: Any = bool if hint is bool else str  # numbers arrive as text: `--learning-rate 1e-3,5e-3` is a grid (build_configs)
        if hint == tuple[str, ...]:
            base = list[str]  # a repeatable option: --log tensorboard --log wandb (or --log tensorboard,wandb)
        metavar = {int: "INTEGER", float: "FLOAT"}.get(hint)
        flags = FLAG_NAMES.get(f.name, ["--" + f.name.replace("_", "-")])
        if base is bool:
            flags = [f"{flags[0]}/--no-{flags[0][2:]}"]
        default_value = getattr(cartpole, f.name)
        if isinstance(default_value, tuple):
            default_value = ", ".join(default_value) or "none"
        help_text = f"{docs.get(f.name, '')} [cartpole preset: {default_value}]"
        # built at runtime from the field's type, so it goes through Any rather than a static annotation
        option = typer.Option(*flags, help=help_text, show_default=False, metavar=f"{metavar}[,...]" if metavar else None)
        annotation = cast(Any, Annotated)[base | None, option]
        parameters.append(keyword(f.name, None, annotation))
    return parameters


def preset_for(preset_name: str | None, env_id: str | None) -> str:
    """`--preset` if given, else the preset that claims the env id (CartPole-v1's when none is given),
    else the general default, with a one-line note on stderr saying so."""
    if preset_name is not None:
        return preset_name
    from fastdqn.presets import GENERAL, preset_for_env

    env_id = env_id or Config().env_id
    found = preset_for_env(env_id)
    if found is None:
        from fastdqn.envs.spaces import find_spec

        find_spec(env_id)  # an unknown id is refused in its own line first, never announced as "no preset"
        err_console.print(
            f"note: no preset for {env_id}; using the general `{GENERAL}` preset (`fastdqn presets` lists them; --preset NAME picks one)",
            highlight=False,
            soft_wrap=True,
        )
        return GENERAL
    return found


def build_config(preset_name: str | None, config_file: Path | None, values: dict[str, Any]) -> Config:
    """The preset (or a saved config.json, or a TOML file over its preset), then every option the user gave on top of it.

    With no --preset, the preset is the one the env id picks (`--env`, else the file's env_id)."""
    file_values: dict[str, Any] = {}
    given_env = values.get("env_id")
    env_id = None if given_env is None else str(given_env)
    if config_file is None:
        cfg = preset(preset_for(preset_name, env_id))
    elif config_file.suffix not in (".toml", ".json"):
        raise ConfigError(
            f"--config {config_file}: the name must end in .toml (a TOML file, see `fastdqn config`) or .json (a run's config.json)"
        )
    elif config_file.suffix == ".toml":
        from fastdqn.tomlconfig import read_toml

        file_values = read_toml(config_file)
        # --preset overrides the file's preset, which overrides the env id's
        file_values["preset"] = preset_name or file_values.get("preset") or preset_for(None, env_id or file_values.get("env_id"))
        cfg = preset(file_values["preset"])
    elif config_file.is_file():
        cfg = Config.load(config_file)
    else:
        raise ConfigError(f"--config {config_file}: no such file; pass a run.toml (see `fastdqn config`) or a run's config.json")
    changes: dict[str, Any] = dict(file_values)  # the options below override the file
    for name, value in values.items():
        if value is None:
            continue
        parsed = option_values(name, value)
        if len(parsed) > 1:
            raise ConfigError(
                f"--{name.replace('_', '-')} {value} gives {len(parsed)} values; `fastdqn train` trains a grid of them, here give one"
            )
        changes[name] = parsed[0]
    return cfg.replace(**changes)


NOT_LISTS = {"out_dir", "run_name", "wandb_project", "wandb_entity", "log"}
"""Text options whose value may hold a comma: never split into a grid."""


def option_values(name: str, value: Any) -> list[Any]:
    """An option's value(s) as the Config field's type; `1e-3,5e-3` gives two (a grid)."""
    hint = typing.get_type_hints(Config)[name]
    if hint == tuple[str, ...]:
        return [tuple(part.strip() for item in value for part in item.split(",") if part.strip())]
    if not isinstance(value, str):
        return [value]  # a library caller's typed value, or a flag
    parts = [value] if name in NOT_LISTS else [part.strip() for part in value.split(",")]
    parsed: list[Any] = []
    for part in parts:
        if hint == (float | None):
            parsed.append(parse_optional_float(name, part))
        elif hint in (int, float):
            try:
                parsed.append(hint(part))
            except ValueError:
                kind = "an integer" if hint is int else "a number"
                raise ConfigError(f"--{name.replace('_', '-')} {part!r} is not {kind}") from None
        elif hint is bool:
            if part.lower() not in BOOL_WORDS:
                raise ConfigError(f"{name}={part!r} is not true or false; write {name}=true or {name}=false")
            parsed.append(BOOL_WORDS[part.lower()])
        elif hint == (str | None) and part.lower() == "none":
            parsed.append(None)
        else:
            parsed.append(part)
    return parsed


def parse_seeds(text: str) -> list[int]:
    """`1-8`, `1,4,9` or `1-4,9` -> the seeds, in order, each once."""
    seeds: list[int] = []
    try:
        for part in (p.strip() for p in text.split(",") if p.strip()):
            first, dash, last = part.partition("-")
            low, high = int(first), int(last) if dash else int(first)
            if high < low:
                raise ValueError
            seeds.extend(range(low, high + 1))
    except ValueError:
        raise ConfigError(f"--seeds {text!r} is not a seed list; write it as 1-8, 1,4,9 or 1-4,9") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seeds {text!r} must name each seed once; write it as 1-8, 1,4,9 or 1-4,9")
    return seeds


def build_configs(preset_name: str | None, config_file: Path | None, values: dict[str, Any], seeds: str | None) -> list[Config]:
    """The configs to train: one, or the grid of every option given several values, times `--seeds`
    (seeds vary fastest, so the members of one grid value sit together)."""
    grid = {name: option_values(name, value) for name, value in values.items() if value is not None}
    listed = {name: options for name, options in grid.items() if len(options) > 1}
    if seeds is not None:
        if "seed" in grid:
            raise ConfigError("give --seed or --seeds, not both")
        listed["seed"] = list(parse_seeds(seeds))
    fixed = {name: options[0] for name, options in grid.items() if name not in listed}
    base = build_config(preset_name, config_file, fixed)
    # build_config reads None as "not given"; an explicit `none` (e.g. --stop-at-return none) is applied here
    base = base.replace(**{name: value for name, value in fixed.items() if value is None})
    if not listed:
        return [base]
    shaped = [name for name in listed if name in SHAPE_FIELDS]
    if shaped:
        raise ConfigError(
            f"{', '.join('--' + n.replace('_', '-') for n in shaped)} change tensor shapes and cannot take several values in one group; "
            "run one `fastdqn train` per value"
        )
    from fastdqn.resources import check_memory

    check_memory([base], members=math.prod(len(options) for options in listed.values()))  # before 100,000 configs are built
    names = list(listed)
    return [base.replace(**dict(zip(names, combo, strict=True))) for combo in itertools.product(*(listed[n] for n in names))]


def keyword(name: str, default: Any, annotation: Any) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


def config_source_options() -> list[inspect.Parameter]:
    presets = ", ".join(config_module.preset_names())
    return [
        keyword(
            "preset_name",
            None,
            Annotated[
                str | None,
                typer.Option(
                    "--preset",
                    help=f"Starting values: {presets} [default: the file's preset, else the one --env picks (`fastdqn presets`)].",
                ),
            ],
        ),
        keyword(
            "config_file",
            None,
            Annotated[
                Path | None,
                typer.Option(
                    "--config", help="A TOML file (`fastdqn config`) over its preset, or a run's config.json; options override it."
                ),
            ],
        ),
    ]
