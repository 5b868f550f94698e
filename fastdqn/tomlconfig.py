"""TOML config files: `fastdqn config` prints one, `fastdqn train --config run.toml` reads it back.

A file holds `Config` fields as top-level keys (any subset: the missing ones come from the preset
the file names, or `--preset`, or the preset of the file's env id), and `[extra]` as a table. TOML has no null, so a field
that is None is written as the string "none", the same word the command line takes.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import re
import sys
import typing
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from fastdqn.config import Config, ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # the same parser, before it joined the standard library
    import tomli as tomllib


def to_toml(cfg: Config, docs: dict[str, str] | None = None, header: str = "") -> str:
    """Every field of `cfg` as TOML, each under its attribute docstring from `docs`; reads back to `cfg`."""
    docs = docs or {}
    lines = [f"# {line}" for line in header.splitlines()]
    for f in dataclasses.fields(Config):
        if f.name == "extra":
            continue  # a table: it has to come after every top-level key
        value = getattr(cfg, f.name)
        lines.append("")
        lines += [f"# {line.strip()}".rstrip() for line in docs.get(f.name, "").splitlines()]
        lines.append(f"{f.name} = {_value('none' if value is None else value, f.name)}")
    lines += ["", "# Free-form notes saved with the run.", "[extra]"]
    lines += [f"{_key(key)} = {_value(value, 'extra.' + key)}" for key, value in cfg.extra.items()]
    return "\n".join(lines).lstrip("\n") + "\n"


def read_toml(path: Path) -> dict[str, Any]:
    """The fields a TOML config file sets, each checked against its `Config` type.

    Raises ConfigError with one line naming the file, the line where it can be found, and the key.
    """
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as error:
        raise ConfigError(f"--config {path}: cannot read it ({error.strerror or error})") from None
    except UnicodeDecodeError as error:
        raise ConfigError(f"--config {path}: not UTF-8 text (byte {error.start}), as TOML must be; save it as UTF-8") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None
    return check_values(path, text, data)


def check_values(path: Path, text: str, data: dict[str, Any]) -> dict[str, Any]:
    """`data`, parsed from `text` (the file at `path`), as Config field values; unknown keys and wrong types raise ConfigError."""
    hints = typing.get_type_hints(Config)
    values: dict[str, Any] = {}
    for key, value in data.items():
        where = _where(path, text, key)
        if key not in hints:
            close = difflib.get_close_matches(key, list(hints), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{where}: unknown key {key!r}{hint}; the keys are Config's fields, listed by `fastdqn train --help`")
        values[key] = _check(key, hints[key], value, where)
    return values


def _check(key: str, hint: Any, value: Any, where: str) -> Any:
    """`value` as the field's type wants it, or a ConfigError naming the key and where it is."""

    def wrong(expected: str) -> ConfigError:
        shown = json.dumps(value) if isinstance(value, str) else repr(value)
        return ConfigError(f"{where}: {key} = {shown} must be {expected}")

    if hint in (float | None, str | None) and isinstance(value, str) and value.lower() == "none":
        return None
    if hint is bool:
        if not isinstance(value, bool):
            raise wrong("true or false")
        return value
    if hint is int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise wrong("an integer")
        return value
    if hint in (float, float | None):
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise wrong("a number" + (' or "none"' if hint is not float else ""))
        return float(value)
    if hint in (str, str | None):
        if not isinstance(value, str):
            raise wrong("a string" + (' ("none" for none)' if hint is not str else ""))
        return value
    if get_origin(hint) is Literal:
        choices = get_args(hint)
        if value not in choices:
            raise wrong("one of " + ", ".join(f'"{choice}"' for choice in choices))
        return value
    if hint == tuple[str, ...]:
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
            raise wrong('a list of strings, e.g. ["tensorboard", "wandb"]')
        return tuple(items)
    if get_origin(hint) is dict:
        if not isinstance(value, dict):
            raise wrong("a table")
        return value
    raise AssertionError(f"Config.{key} has a type the TOML reader does not know: {hint}")


def _where(path: Path, text: str, key: str) -> str:
    """`path:line` of the top-level `key`, or just `path` where the key is not written plainly."""
    pattern = re.compile(rf"""^\s*(["']?){re.escape(key)}\1\s*=""")
    for number, line in enumerate(text.splitlines(), start=1):
        if line.lstrip().startswith("["):
            break  # top-level keys all come before the first table
        if pattern.match(line):
            return f"{path}:{number}"
    return str(path)


def _key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else _string(key)


def _string(text: str) -> str:
    escaped = []
    for char in text:
        if char in '"\\':
            escaped.append("\\" + char)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            escaped.append(f"\\u{ord(char):04x}")
        else:
            escaped.append(char)
    return '"' + "".join(escaped) + '"'


def _value(value: Any, name: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value:_}" if abs(value) >= 10_000 else str(value)
    if isinstance(value, float):
        return repr(value)  # shortest text that parses back to the same float; inf and nan are TOML too
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(item, name) for item in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_key(str(k))} = {_value(v, f'{name}.{k}')}" for k, v in value.items()) + " }"
    raise ConfigError(f"{name}={value!r} cannot be written as TOML (it has no null); use a string, number, boolean, list or table")
