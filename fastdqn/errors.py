"""The errors a user can cause or act on: the CLI prints each as one line and exits with its code."""

from __future__ import annotations


class FastDQNError(Exception):
    """An error a user can cause or act on: the CLI prints its message as one line and exits with `exit_code`."""

    exit_code = 2


class ConfigError(FastDQNError, ValueError):
    """A user-settable value is out of range; the message names the field, the value and the fix."""
