"""`group.json`: the members' configs as a group started them, so `fastdqn train --resume GROUP` rebuilds it.

The group's checkpoints are the run checkpoints of resume.py, with every member's state.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from fastdqn.config import Config, ConfigError

FORMAT = "fastdqn-group-1"


def write_group_json(group_dir: Path, cfgs: list[Config]) -> None:
    (group_dir / "group.json").write_text(json.dumps({"format": FORMAT, "members": [asdict(c) for c in cfgs]}, indent=1, sort_keys=True))


def is_group(folder: Path) -> bool:
    return (folder / "group.json").is_file()


def read_group_configs(group_dir: Path, total_steps: int | None = None) -> list[Config]:
    """The members' configs as the group started them (`total_steps` extends every member); a damaged
    group.json is refused in one line naming it."""
    path = group_dir / "group.json"
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
        members = saved["members"] if isinstance(saved, dict) and saved.get("format") == FORMAT else None
        if not isinstance(members, list) or not members or not all(isinstance(m, dict) for m in members):
            raise ValueError(f"no list of member configs under a {FORMAT!r} format")
    except (OSError, UnicodeDecodeError, ValueError, KeyError) as error:
        raise ConfigError(f"--resume {group_dir}: its group.json cannot be read ({error}); put back the file") from None
    cfgs = []
    for index, values in enumerate(members):
        try:
            cfgs.append(Config.from_dict(values))
        except (ValueError, TypeError) as error:  # ConfigError is a ValueError
            raise ConfigError(f"--resume {group_dir}: {path}, member {index}: {str(error).strip()[:300]}; fix that value") from None
    return cfgs if total_steps is None else [c.replace(total_steps=total_steps) for c in cfgs]
