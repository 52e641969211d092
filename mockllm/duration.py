"""Durations as scenario files write them: ``100ms``, ``1.5s``, ``2m``, ``1h`` or a number of seconds.

All of mockllm works in float seconds internally; this module is the only place units exist.
A duration is at most :data:`MAX_SECONDS` (a day): a longer wait is ``stall: forever``.
"""

from __future__ import annotations

import math
import re

from .errors import show

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
#: The schema's ``duration`` pattern is this one without the sign (a test keeps them equal).
PATTERN = r"^\s*(\d+(\.\d+)?|\.\d+)\s*(ms|s|m|h)?\s*$"
_DURATION = re.compile(r"^\s*(-)?\s*(\d+(?:\.\d+)?|\.\d+)\s*(ms|s|m|h)?\s*$")

EXAMPLES = "e.g. 100ms, 1.5s, 2m"
MAX_SECONDS = 86_400.0


def parse_duration(value: object) -> float:
    """Return ``value`` in seconds, or raise ``ValueError`` saying what a duration looks like.

    >>> parse_duration("100ms"), parse_duration("1.5s"), parse_duration("2m"), parse_duration(3)
    (0.1, 1.5, 120.0, 3.0)
    """
    seconds = _seconds(value)
    if seconds is None:
        raise ValueError(f"{show(value)} is not a duration ({EXAMPLES})")
    reason = _out_of_range(seconds)
    if reason is not None:
        raise ValueError(f"{show(value)} is not a duration: {reason}")
    return seconds


def why_not(value: object) -> str | None:
    """Why a value written like a duration is not one (negative, longer than a day, not a
    number); ``None`` if it is a duration, or is not written like one at all."""
    seconds = _seconds(value)
    return None if seconds is None else _out_of_range(seconds)


def _seconds(value: object) -> float | None:
    if isinstance(value, bool):  # bool is an int subclass; `true` is not a duration
        return None
    if isinstance(value, int):
        return float(value) if abs(value) <= 10**300 else (math.inf if value > 0 else -math.inf)
    if isinstance(value, float):
        return value
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            sign, number, unit = match.groups()
            return (-1 if sign else 1) * float(number) * _UNITS[unit or "s"]
    return None


def _out_of_range(seconds: float) -> str | None:
    if math.isnan(seconds):
        return "it is not a number"
    if seconds < 0:
        return "it is negative"
    if seconds > MAX_SECONDS:
        return "it is longer than a day (24h), the longest mockllm waits; use stall: forever to wait for ever"
    return None


def format_duration(seconds: float) -> str:
    """The shortest readable form: ``0.1`` → ``100ms``, ``1.5`` → ``1.5s``."""
    if seconds < 1:
        return f"{seconds * 1000:g}ms"
    return f"{seconds:g}s"
