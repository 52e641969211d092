"""``match``: the conditions a request must meet for a scenario to answer it, each one function.

A condition reads the request (:class:`Seen`: the normalised
:class:`~mockllm.conversation.Conversation`, the wire format, the headers and the JSON body) and
returns ``None`` when it holds, or the sentence that explains the miss, naming what the request
had: ``last_user does not contain 'weather' (it was 'hello')``. :func:`compile_match` turns a
scenario's ``match`` mapping (already checked against the JSON Schema) into a :class:`Match`,
reporting a bad regex or a text condition without its test at its key.

Adding a condition: one function below, one entry in :data:`CONDITIONS`, its key in
``data/scenario.schema.json``.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any

from .conversation import Conversation
from .errors import show

#: The tests a text condition may make, in the order messages list them.
TEXT_TESTS = ("contains", "equals", "startswith", "regex")
_SHOWN = 60  # characters of the request's text a message quotes


@dataclass(frozen=True)
class Seen:
    """What a condition may look at in a request."""

    conversation: Conversation
    format: str = ""
    headers: Mapping[str, str] | None = None
    body: Any = None

    # Read once per request, however many scenarios ask (a frozen dataclass keeps no slots, so
    # cached_property can store them).
    @cached_property
    def last_user(self) -> str | None:
        return self.conversation.last_user

    @cached_property
    def tool_result(self) -> str | None:
        return self.conversation.tool_result


@dataclass(frozen=True, slots=True)
class TextTest:
    """One alternative of a text condition: ``contains`` (the default for a bare string),
    ``equals``, ``startswith`` or ``regex`` (``re.search``), optionally ignoring case."""

    kind: str
    value: str
    ignore_case: bool = False
    pattern: re.Pattern[str] | None = None
    #: ``value`` as compared: case-folded with ``ignore_case``.
    wanted: str = ""

    def holds(self, text: str) -> re.Match[str] | bool:
        if self.pattern is not None:
            return self.pattern.search(text) or False
        given, wanted = (fold(text), self.wanted) if self.ignore_case else (text, self.value)
        if self.kind == "equals":
            return given == wanted
        if self.kind == "startswith":
            return given.startswith(wanted)
        return wanted in given

    def __str__(self) -> str:
        verb = {"contains": "contain", "equals": "equal", "startswith": "start with", "regex": "match"}
        shown = f"/{self.value}/" if self.kind == "regex" else repr(self.value)
        return f"{verb[self.kind]} {shown}"


Text = tuple[TextTest, ...]  # any of them (OR)


@lru_cache(maxsize=256)
def fold(text: str) -> str:
    """``text.casefold()``, once per request text however many conditions ignore case."""
    return text.casefold()


class TextMiss:
    """Why a text condition failed, written out only when shown: most misses never are (the
    request matched a later scenario, or went to the default)."""

    __slots__ = ("tests", "text", "what")

    def __init__(self, what: str, tests: Text, text: str | None) -> None:
        self.what, self.tests, self.text = what, tests, text

    def __str__(self) -> str:
        tests = self.tests
        wanted = str(tests[0]) if len(tests) == 1 else "any of: " + ", ".join(map(str, tests))
        had = "there was none" if self.text is None else f"it was {_quote(self.text)}"
        return f"{self.what} does not {wanted} ({had})"


#: What a condition returns: ``None`` (it holds) or why not (``str()`` of it is the sentence).
Why = str | TextMiss | None


def text_miss(what: str, tests: Text, text: str | None) -> Why:
    """``None`` if ``text`` passes any of ``tests``; else why not, quoting ``text``."""
    if text is not None:
        for test in tests:
            if test.holds(text):
                return None
    return TextMiss(what, tests, text)


def groups(tests: Text, text: str | None) -> dict[str, str]:
    """The named groups of the first ``regex`` test that matches ``text`` (for templates)."""
    for test in tests:
        found = test.holds(text) if text is not None and test.pattern is not None else None
        if isinstance(found, re.Match):
            return {k: v for k, v in found.groupdict().items() if v is not None}
    return {}


def _quote(text: str) -> str:
    return repr(text if len(text) <= _SHOWN else text[:_SHOWN] + "…")


# -- the conditions: (compiled spec, request) → None or why not --------------------------------------


def last_user(tests: Text, seen: Seen) -> Why:
    return text_miss("last_user", tests, seen.last_user)


def system(tests: Text, seen: Seen) -> Why:
    return text_miss("system", tests, seen.conversation.system or None)


def any_message(tests: Text, seen: Seen) -> str | None:
    texts = [m.text for m in seen.conversation.messages if m.text]
    if seen.conversation.system:
        texts.insert(0, seen.conversation.system)
    if any(text_miss("", tests, text) is None for text in texts):
        return None
    last = texts[-1] if texts else None
    return str(text_miss("no message", tests, last)).replace(
        "(it was", f"({len(texts)} messages, the last", 1
    )


def tool_result(spec: bool | Text, seen: Seen) -> Why:
    result = seen.tool_result
    messages = seen.conversation.messages
    last = f"a {messages[-1].role} message" if messages else "no message"
    if result is None:
        return None if spec is False else f"tool_result: the last message is not a tool result (it is {last})"
    if spec is False:
        return f"tool_result: the last message is a tool result ({_quote(result)})"
    return None if spec is True else text_miss("tool_result", spec, result)


def tools(names: tuple[str, ...], seen: Seen) -> str | None:
    offered = seen.conversation.tools
    missing = [name for name in names if name not in offered]
    if not missing:
        return None
    had = ", ".join(map(repr, offered)) if offered else "none"
    return f"tools: the request does not offer {', '.join(map(repr, missing))} (it offers {had})"


def turn(bounds: tuple[int | None, int | None], seen: Seen) -> str | None:
    low, high = bounds
    n = seen.conversation.turn
    if (low is None or n >= low) and (high is None or n <= high):
        return None
    if low == high:
        return f"turn is {n}, not {low}"
    parts = [f"at least {low}" if low is not None else "", f"at most {high}" if high is not None else ""]
    return f"turn is {n}, not {' and '.join(p for p in parts if p)}"


def model(glob: str, seen: Seen) -> str | None:
    given = seen.conversation.model
    return None if fnmatch.fnmatchcase(given, glob) else f"model {given!r} does not match {glob!r}"


def headers(specs: tuple[tuple[str, Text], ...], seen: Seen) -> Why:
    given = {k.lower(): v for k, v in (seen.headers or {}).items()}
    for name, tests in specs:
        miss = text_miss(f"header {name}", tests, given.get(name.lower()))
        if miss is not None:
            return miss
    return None


def body(subset: Mapping[str, Any], seen: Seen) -> str | None:
    return _subset_miss(subset, seen.body, "body")


def _subset_miss(wanted: Any, given: Any, path: str) -> str | None:
    if isinstance(wanted, Mapping):
        if not isinstance(given, Mapping):
            return f"{path} is {show(given)}, not a mapping"
        for key, value in wanted.items():
            if key not in given:
                return f"{path}.{key} is missing"
            miss = _subset_miss(value, given[key], f"{path}.{key}")
            if miss is not None:
                return miss
        return None
    numbers = _number(wanted) and _number(given)
    same = wanted == given and (numbers or type(wanted) is type(given))
    return None if same else f"{path} is {show(given)}, not {show(wanted)}"


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def format_(names: tuple[str, ...], seen: Seen) -> str | None:
    if seen.format in names:
        return None
    return f"format is {seen.format!r}, not {' or '.join(map(repr, names))}"


Check = Callable[[Any, Seen], Why]
#: Each condition by its key in ``match`` (checked in the order the scenario gives them).
CONDITIONS: dict[str, Check] = {
    "format": format_,
    "model": model,
    "headers": headers,
    "tools": tools,
    "turn": turn,
    "tool_result": tool_result,
    "system": system,
    "last_user": last_user,
    "any_message": any_message,
    "body": body,
}


@dataclass(frozen=True)
class Match:
    """A scenario's compiled ``match``: conditions that must all hold (AND)."""

    conditions: tuple[tuple[str, Any], ...]

    def miss(self, seen: Seen) -> Why:
        """``None`` if every condition holds; else the first one that failed, and why."""
        for key, spec in self.conditions:
            why = CONDITIONS[key](spec, seen)
            if why is not None:
                return why
        return None

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(key for key, _ in self.conditions)

    def groups(self, seen: Seen) -> dict[str, str]:
        """Named groups of the ``regex`` conditions on the request's texts (for templates)."""
        texts = {"last_user": seen.conversation.last_user, "system": seen.conversation.system}
        found: dict[str, str] = {}
        for key, spec in self.conditions:
            if key in texts:
                found.update(groups(spec, texts[key]))
            elif key == "tool_result" and isinstance(spec, tuple):
                found.update(groups(spec, seen.conversation.tool_result))
        return found


Report = Callable[..., None]


def compile_match(spec: Mapping[str, Any], report: Report) -> Match | None:
    """The :class:`Match` of a ``match`` mapping the schema accepted; ``None`` after reporting
    (at ``("match", ...)``) a regex that does not compile or a text test without its kind."""
    ok = True

    def text(value: Any, key: tuple[Any, ...]) -> Text:
        nonlocal ok
        items = value if isinstance(value, list) else [value]
        out = []
        for index, item in enumerate(items):
            here = (*key, index) if isinstance(value, list) else key
            if isinstance(item, str):
                out.append(TextTest("contains", item, wanted=item))
                continue
            kinds = [k for k in TEXT_TESTS if k in item]
            if len(kinds) != 1:
                found = ", ".join(kinds) if kinds else "none"
                report(here, f"needs exactly one of {', '.join(TEXT_TESTS)} (found: {found})")
                ok = False
                continue
            kind, ignore = kinds[0], bool(item.get("ignore_case", False))
            pattern = None
            if kind == "regex":
                try:
                    pattern = re.compile(item[kind], re.IGNORECASE if ignore else 0)
                except re.error as exc:
                    report((*here, kind), f"{show(item[kind])} is not a regular expression: {exc}")
                    ok = False
                    continue
            out.append(TextTest(kind, item[kind], ignore, pattern, item[kind].casefold()))
        return tuple(out)

    conditions: list[tuple[str, Any]] = []
    for key, value in spec.items():  # in the file's order: a miss names the first that failed
        here = ("match", key)
        if key in ("last_user", "system", "any_message"):
            compiled: Any = text(value, here)
        elif key == "tool_result":
            compiled = value if isinstance(value, bool) else text(value, here)
        elif key == "headers":
            compiled = tuple((name, text(tests, (*here, name))) for name, tests in value.items())
        elif key == "turn":
            compiled = (value, value) if isinstance(value, int) else (value.get("min"), value.get("max"))
        elif key in ("tools", "format"):
            compiled = (value,) if isinstance(value, str) else tuple(value)
        else:
            compiled = value
        conditions.append((key, compiled))
    return Match(tuple(conditions)) if ok else None
