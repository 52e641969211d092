"""Faults: the ways a real LLM stream misbehaves, one class each, registered by their YAML key.

A fault item in a scenario is ``at`` plus exactly one action key::

    faults:
      - {at: 3, stall: 5s, keepalive: {every: 1s, line: ": ping"}}
      - {at: 7, disconnect: reset}

Adding a fault means one class here, decorated with ``@register("key")``, its keys in
``data/scenario.schema.json``, and one test file. A fault only talks to the timeline's
:class:`~mockllm.timeline.Cursor`: it never sees bytes, so it works in every wire format.
"""

from __future__ import annotations

import codecs
import math
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, TypeVar

from .duration import parse_duration
from .events import Close, Comment, Fragment, Hang, KeepAlive, Malformed, Step, StreamError
from .timeline import Cursor

FaultT = TypeVar("FaultT", bound="type[Fault]")
Phase = Literal["reply", "finish", "done"]
#: The ``at`` values past the reply's tokens and the phase each names.
AT_PHASES: dict[str, Phase] = {"end": "reply", "after-finish": "finish", "after-done": "done"}
PHASE_ORDER: tuple[Phase, ...] = ("reply", "finish", "done")


class SpecError(ValueError):
    """A fault item the schema accepts but ``from_spec`` cannot build; ``key`` is within the item."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


#: Fault classes by their YAML key; the order is the order errors list them in.
FAULTS: dict[str, type[Fault]] = {}


def register(key: str) -> Callable[[FaultT], FaultT]:
    def decorate(cls: FaultT) -> FaultT:
        cls.key = key
        FAULTS[key] = cls
        return cls

    return decorate


@dataclass(frozen=True)
class Fault(ABC):
    """One fault, firing just before the token at index ``at`` (``None`` means ``at: end``)."""

    key: ClassVar[str]

    at: int | None
    #: ``reply``: before token ``at`` (or, ``at`` None, after the last token, before the finish);
    #: ``finish``: after the finish, before the end sentinel (``[DONE]``); ``done``: after it.
    phase: Phase = field(default="reply", kw_only=True)

    @classmethod
    @abstractmethod
    def from_spec(cls, at: int | None, spec: Mapping[str, Any]) -> Fault:
        """Build from a fault item already checked against the JSON Schema."""

    def check(self, tokens: tuple[str, ...]) -> list[tuple[str, str]]:
        """Problems the schema cannot see, as ``(key within the item, message)`` pairs."""
        return []

    @abstractmethod
    def fire(self, cursor: Cursor, time_scale: float) -> Iterator[Step]:
        """Emit this fault's steps and adjust ``cursor``."""

    @property
    def ends_stream(self) -> bool:
        """Nothing after this fault is sent."""
        return False

    def max_steps(self) -> float:
        """The most steps :meth:`fire` can emit (``math.inf``: endless), so the timeline knows
        without building it whether it is short enough to share."""
        return 2

    @property
    def cuts(self) -> bool:
        """The fault splits its token's bytes; two such faults cannot share a token."""
        return False

    def placed(self) -> list[tuple[str, str]]:
        """Problems of where the fault is (its ``phase``), as :meth:`check` reports them."""
        if self.cuts and self.phase == "done":
            return [("at", f"{self.key} needs an event to cut: after-done has none")]
        return []


@register("stall")
@dataclass(frozen=True)
class Stall(Fault):
    """Send nothing for ``duration`` seconds (``None``: forever), optionally filled with keep-alives."""

    duration: float | None
    keepalive_every: float | None = None
    keepalive_line: str | None = None  # None: the wire format's own keep-alive
    mid_event: bool = False

    @property
    def cuts(self) -> bool:
        return self.mid_event

    @classmethod
    def from_spec(cls, at: int | None, spec: Mapping[str, Any]) -> Stall:
        stall = spec["stall"]
        keepalive = spec.get("keepalive") or {}
        return cls(
            at=at,
            duration=None if stall == "forever" else parse_duration(stall),
            keepalive_every=parse_duration(keepalive["every"]) if keepalive else None,
            keepalive_line=keepalive.get("line"),
            mid_event=bool(spec.get("mid_event", False)),
        )

    def check(self, tokens: tuple[str, ...]) -> list[tuple[str, str]]:
        problems = []
        if self.keepalive_every is not None and self.keepalive_every <= 0:
            problems.append(("keepalive.every", "must be longer than 0s"))
        if self.mid_event and self.keepalive_every is not None:
            problems.append(
                ("keepalive", "cannot be combined with mid_event: it would land inside the event")
            )
        return problems

    @property
    def ends_stream(self) -> bool:
        return self.duration is None

    def max_steps(self) -> float:
        if self.keepalive_every is None:
            return 2
        if self.duration is None:
            return math.inf
        return 2 + self.duration / self.keepalive_every

    def fire(self, cursor: Cursor, time_scale: float) -> Iterator[Step]:
        start = cursor.time
        if self.mid_event:
            yield Step(start, Fragment(cursor.next, "head", "half"))
            cursor.cut = "half"
        if self.keepalive_every is not None and cursor.streaming:
            every = self.keepalive_every * time_scale
            end = None if self.duration is None else start + self.duration * time_scale
            beat = 1
            # With time_scale 0 the stall is empty: no keep-alive fits in it (and none loops forever).
            while every > 0 and (end is None or start + beat * every < end):
                yield Step(start + beat * every, KeepAlive(self.keepalive_line))
                beat += 1
        if self.duration is None:
            yield Step(start, Hang())
            cursor.ended = True
        else:
            cursor.time = start + self.duration * time_scale


MALFORMED_KINDS = ("invalid-json", "truncated-json", "not-json", "missing-prefix", "bad-utf8", "bad-crc")


@register("malformed")
@dataclass(frozen=True)
class MalformedLine(Fault):
    """A malformed line before the token (or instead of it, with ``replace: true``)."""

    kind: str
    raw: bytes = b""
    replace: bool = False

    @classmethod
    def from_spec(cls, at: int | None, spec: Mapping[str, Any]) -> MalformedLine:
        value = spec["malformed"]
        replace = bool(spec.get("replace", False))
        if isinstance(value, Mapping):
            try:
                raw = decode_raw(value["raw"])
            except ValueError as exc:
                raise SpecError("malformed.raw", str(exc)) from None
            return cls(at=at, kind="raw", raw=raw, replace=replace)
        return cls(at=at, kind=value, replace=replace)

    def fire(self, cursor: Cursor, time_scale: float) -> Iterator[Step]:
        yield Step(cursor.time, Malformed(self.kind, cursor.next, self.raw))
        if self.replace:
            cursor.skip = True


def decode_raw(text: str) -> bytes:
    r"""The bytes of a ``raw:`` value: its UTF-8, with backslash escapes (``\xff``, ``\r``, ``\n``,
    ``\0``, ``\\``) turned into those bytes.

    YAML's double-quoted strings already decode ``"\x00"`` or ``"\r"`` themselves; write a byte
    above 0x7F in single quotes (``'\xff'``), since ``"\xff"`` in YAML means the character U+00FF.
    Any other backslash is a ``ValueError`` (Python would keep it and warn).
    """
    for escape in _ESCAPE.finditer(text):
        what = escape.group(1)
        octal = what.isdigit() and set(what) <= _OCTAL and int(what, 8) > 0o377
        if what in ("", "x") or (len(what) == 1 and what not in _SINGLE) or octal:
            raise ValueError(f"{escape.group()} is not an escape (\\xHH, \\r, \\n, \\0, \\\\ are)")
    decoded, _ = codecs.escape_decode(text.encode("utf-8"))
    return bytes(decoded)


#: A backslash and what follows it: Python's bytes escapes, or one character (or none) that is not one.
_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|[0-7]{1,3}|.?)", re.DOTALL | re.ASCII)
_SINGLE = set("\\'\"abfnrtv\n01234567")
_OCTAL = set("01234567")


DISCONNECT_OUTCOMES = {"truncate": "eof", "fin": "fin", "reset": "reset", "mid-event": "fin"}


@register("disconnect")
@dataclass(frozen=True)
class Disconnect(Fault):
    """End the connection early: truncate (clean end), fin, reset, or mid-event (half an event + FIN)."""

    mode: str

    @property
    def cuts(self) -> bool:
        return self.mode == "mid-event"

    @classmethod
    def from_spec(cls, at: int | None, spec: Mapping[str, Any]) -> Disconnect:
        return cls(at=at, mode=spec["disconnect"])

    @property
    def ends_stream(self) -> bool:
        return True

    def fire(self, cursor: Cursor, time_scale: float) -> Iterator[Step]:
        if self.mode == "mid-event":
            yield Step(cursor.time, Fragment(cursor.next, "head", "half"))
        close_mode = DISCONNECT_OUTCOMES[self.mode]
        yield Step(cursor.time, Close(close_mode, f"fault:{self.mode}"))  # type: ignore[arg-type]
        cursor.ended = True


@register("error_event")
@dataclass(frozen=True)
class ErrorEvent(Fault):
    """The API's error object inside the stream, then a clean end."""

    message: str
    type: str | None = None
    code: str | int | None = None
    event: str | None = None

    @classmethod
    def from_spec(cls, at: int | None, spec: Mapping[str, Any]) -> ErrorEvent:
        error = spec["error_event"]
        return cls(
            at=at,
            message=error["message"],
            type=error.get("type"),
            code=error.get("code"),
            event=error.get("event"),
        )

    @property
    def ends_stream(self) -> bool:
        return True

    def fire(self, cursor: Cursor, time_scale: float) -> Iterator[Step]:
        yield Step(cursor.time, StreamError(self.message, self.type, self.code, self.event))
        yield Step(cursor.time, Close("eof", "fault:error_event"))
        cursor.ended = True


@register("split")
@dataclass(frozen=True)
class Split(Fault):
    """Write the token's event in two TCP writes: cutting a multi-byte UTF-8 character in half
    (``split: utf8``), or at a byte of the event (``split: {byte: N}``, negative from its end),
    ``gap`` apart (``{byte: N, gap: 2ms}``: a recording says how far apart the reads were)."""

    byte: int | None = None
    #: Seconds between the two writes (before ``time_scale``); None: the timeline's ``SPLIT_GAP``.
    gap: float | None = None

    @property
    def cuts(self) -> bool:
        return True

    @classmethod
    def from_spec(cls, at: int | None, spec: Mapping[str, Any]) -> Split:
        value = spec["split"]
        if not isinstance(value, Mapping):
            return cls(at=at)
        gap = value.get("gap")
        return cls(at=at, byte=value["byte"], gap=None if gap is None else parse_duration(gap))

    def check(self, tokens: tuple[str, ...]) -> list[tuple[str, str]]:
        if self.phase == "finish" and self.byte is not None:
            return []  # cuts the end sentinel
        if self.at is None:
            where = {"reply": "'end'", "finish": "after-finish (but {byte: N} can cut it)"}.get(
                self.phase, "after-done"
            )
            return [("at", f"split needs a token to cut: {where} has none")]
        if self.byte is not None:
            return (
                [("split.byte", "must not be 0: 1 cuts after the first byte, -1 before the last")]
                if self.byte == 0
                else []
            )
        text = tokens[self.at]
        if text.isascii():  # JSON text of tool-call arguments included: it is sent unescaped
            return [("split", f"token {self.at} ({text!r}) has no multi-byte character to cut")]
        return []

    def fire(self, cursor: Cursor, time_scale: float) -> Iterator[Step]:
        cursor.cut = "utf8" if self.byte is None else self.byte
        if self.gap is not None:
            cursor.split_gap = self.gap * time_scale
        return iter(())


@register("content_filter")
@dataclass(frozen=True)
class ContentFilter(Fault):
    """A content filter stops the reply before this token: no more tokens, and the finish says
    why in the format's terms (OpenAI ``content_filter``, Azure's ``content_filter_results`` with
    the category filtered, Anthropic ``refusal``, Gemini ``SAFETY``)."""

    category: str = "violence"
    severity: str = "high"

    @classmethod
    def from_spec(cls, at: int | None, spec: Mapping[str, Any]) -> ContentFilter:
        return cls(at=at, category=spec["content_filter"], severity=spec.get("severity", "high"))

    @property
    def ends_stream(self) -> bool:
        return True  # the reply: no fault after this one fires

    def max_steps(self) -> float:
        return 0

    def placed(self) -> list[tuple[str, str]]:
        if self.phase != "reply":
            return [("at", "content_filter stops the reply: it must come before the finish")]
        return []

    def fire(self, cursor: Cursor, time_scale: float) -> Iterator[Step]:
        cursor.filtered = (self.category, self.severity)
        cursor.skip = True
        return iter(())


@register("comment")
@dataclass(frozen=True)
class CommentLine(Fault):
    """An SSE comment, ``: text``: a block of its own, or (``inside: true``) a line inside the
    next event's block (before its fields). NDJSON has no comments: there it is a line that is
    not JSON."""

    text: str
    inside: bool = False

    @classmethod
    def from_spec(cls, at: int | None, spec: Mapping[str, Any]) -> CommentLine:
        return cls(at=at, text=spec["comment"], inside=bool(spec.get("inside", False)))

    def placed(self) -> list[tuple[str, str]]:
        if self.inside and self.phase == "done":
            return [("inside", "after-done there is no next event to be inside")]
        return []

    def fire(self, cursor: Cursor, time_scale: float) -> Iterator[Step]:
        yield Step(cursor.time, Comment(self.text, self.inside))


@register("unterminated")
@dataclass(frozen=True)
class Unterminated(Fault):
    """The next event without its closing line ending: an SSE event never dispatched (its blank
    line missing, so the next event's fields join it), an NDJSON line without its newline."""

    @property
    def cuts(self) -> bool:
        return True

    @classmethod
    def from_spec(cls, at: int | None, spec: Mapping[str, Any]) -> Unterminated:
        return cls(at=at)

    def fire(self, cursor: Cursor, time_scale: float) -> Iterator[Step]:
        cursor.cut = "open"
        return iter(())


def action_of(spec: Mapping[str, Any]) -> list[str]:
    """The action keys present in a fault item (exactly one is valid)."""
    return [key for key in FAULTS if key in spec]
