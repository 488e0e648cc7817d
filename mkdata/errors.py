"""The errors mkdata raises for its users, shared by every layer.

The CLI turns any ``MkdataError`` into a one-line message and its ``exit_code``; anything else
is a bug and keeps its traceback.
"""

from __future__ import annotations

import importlib.util


class MkdataError(Exception):
    """An error with a message meant for the user (no traceback needed)."""

    exit_code = 2


class BadInput(MkdataError, ValueError):
    """Bad input: the message names the option, key or name and why (lists the valid ones)."""


class ExtraMissing(MkdataError):
    """A command needs an install extra that is not installed."""


class RunFailed(MkdataError):
    """Work was started but some of it could not be done (rerunning retries it)."""

    exit_code = 1


def require_modules(modules: tuple[str, ...], extra: str, purpose: str) -> None:
    """Raise ExtraMissing naming the install command when one of ``modules`` is not installed
    (checked without importing them)."""
    for module in modules:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):  # a broken or blocked install counts as missing
            found = False
        if not found:
            raise ExtraMissing(f"{purpose} needs the '{module}' package, which is not installed; "
                               f"install the {extra} extra: pip install 'mkdata[{extra}]'")
