"""Durations as scenario files write them: ``100ms``, ``1.5s``, ``2m`` or a number of seconds.

All of mockllm works in float seconds internally; this module is the only place units exist.
"""

from __future__ import annotations

import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?|\.\d+)\s*(ms|s|m)?\s*$")

EXAMPLES = "e.g. 100ms, 1.5s, 2m"


def parse_duration(value: object) -> float:
    """Return ``value`` in seconds, or raise ``ValueError`` saying what a duration looks like.

    >>> parse_duration("100ms"), parse_duration("1.5s"), parse_duration("2m"), parse_duration(3)
    (0.1, 1.5, 120.0, 3.0)
    """
    if isinstance(value, bool):  # bool is an int subclass; `true` is not a duration
        raise ValueError(f"{value!r} is not a duration ({EXAMPLES})")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"{value!r} is not a duration: it is negative")
        return float(value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            number, unit = match.groups()
            return float(number) * _UNITS[unit or "s"]
    raise ValueError(f"{value!r} is not a duration ({EXAMPLES})")


def format_duration(seconds: float) -> str:
    """The shortest readable form: ``0.1`` → ``100ms``, ``1.5`` → ``1.5s``."""
    if seconds < 1:
        return f"{seconds * 1000:g}ms"
    return f"{seconds:g}s"
