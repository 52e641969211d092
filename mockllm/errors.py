"""Exceptions raised by mockllm.

Every exception mockllm raises on purpose derives from one base class::

    MockLLMError
    ├── ScenarioError        one or more problems in scenario files, each with file:line:column
    └── ScenarioNotFound     a request or a call named a scenario that is not loaded
        └── NoScenarioMatched  a request no scenario answers (every ``match`` missed, no default)

Problems found while loading scenarios are collected in one pass and raised together, so a user
fixes every mistake in a file at once instead of one per run.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


class MockLLMError(Exception):
    """Base class of every error mockllm raises on purpose."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem in a scenario file, positioned like a compiler diagnostic.

    ``line`` and ``column`` are 1-based, or 0 where there is no position (a missing file, a
    scenario built from a Python mapping); ``key`` is the dotted path of the offending key
    (``timing.per_token``, ``faults[2].disconnect``) or empty for the document itself.
    """

    path: str
    line: int
    column: int
    key: str
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}:{self.column}" if self.line else self.path
        text = f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"
        # A path from the file system may hold an undecodable byte (a surrogate escape): the
        # message must still print.
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def show(value: Any) -> str:
    """A value as a problem message quotes it: short, and printable whatever it is."""
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    if value is None:
        return "null"
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 200:
        # no repr: Python refuses to make one of more than 4,300 digits
        return f"a {int(value.bit_length() * math.log10(2)) + 1}-digit integer"
    text = repr(value)
    if len(text) > 60:
        size = f"{len(value):,} characters" if isinstance(value, str) else f"{len(text):,} characters shown"
        return f"{text[:40]}… ({size})"
    return text


class ScenarioError(MockLLMError):
    """Scenario files that cannot be loaded; ``problems`` lists every problem found."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class ScenarioNotFound(MockLLMError, LookupError):
    """A scenario was asked for by a name that is not loaded."""

    def __init__(self, name: str, known: Sequence[str]) -> None:
        self.name = name
        self.known = tuple(known)
        super().__init__(
            f"No scenario named {name!r}. Known scenarios: {', '.join(self.known)}. "
            "Select one with the X-Mockllm-Scenario header or by using its name as the model; "
            f"a request that names neither gets the default, {self.known[0]!r}."
            if self.known
            else f"No scenario named {name!r}: no scenarios are loaded."
        )


def did_you_mean(word: str, choices: list[str]) -> str:
    """``"; did you mean 'x'?"`` for the choice closest to ``word``, or ``""``."""
    close = difflib.get_close_matches(word, choices, n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


class NoScenarioMatched(ScenarioNotFound):
    """No scenario answers a request: each ``match`` missed and there is no default (every
    scenario has a ``match``, or the server is ``--strict``). The message explains each miss."""

    def __init__(self, misses: Sequence[str], known: Sequence[str], *, strict: bool, request: str) -> None:
        self.misses = tuple(misses)
        self.name = ""
        self.known = tuple(known)
        why = "--strict: no default answers" if strict else "no scenario without a match to default to"
        lines = [f"No scenario matches this request ({request}; {why}):"]
        lines += [f"  {miss}" for miss in self.misses] or ["  (no scenario has a match)"]
        MockLLMError.__init__(self, "\n".join(lines))
