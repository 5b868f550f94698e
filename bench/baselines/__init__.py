"""Baselines written the classic tutorial's way, so fastdqn's figures have a fixed point to compare with."""

from __future__ import annotations

import importlib.util


def extra_missing(module: str) -> str | None:
    """Why a peer library of the `bench` extra cannot be used here, or None when it can."""
    if importlib.util.find_spec(module) is None:
        return f"{module} not installed (`make bench` installs the bench extra: pip install -e '.[bench]')"
    return None
