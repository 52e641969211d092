"""Server-Sent Events framing: neutral events → ``text/event-stream`` bytes. Pure, no I/O.

Follows the WHATWG event-stream format (https://html.spec.whatwg.org/multipage/server-sent-events.html
§9.2.5). The wire options (:class:`~mockllm.scenario.Wire`) deliberately produce streams that are
legal but unusual (CR line endings, a BOM, ``data:`` without a space), because those are what break
real clients. :class:`SSEEncoder` handles every event that is the same in every SSE-based API
(preamble, keep-alives, malformed lines, fragments); a wire format subclasses it and only says what
the payload of a token, a finish, an error and the end sentinel is.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from .events import (
    Close,
    Done,
    Event,
    Finish,
    Fragment,
    Hang,
    KeepAlive,
    Malformed,
    Preamble,
    StreamError,
    Token,
)
from .scenario import Wire

LINE_ENDINGS = {"lf": b"\n", "crlf": b"\r\n", "cr": b"\r"}
BOM = "\ufeff".encode()

#: Stands in for a token's text when a ``bad-utf8`` line is built from a real chunk: a private-use
#: character that JSON leaves as is, replaced afterwards by bytes that are not UTF-8.
_BAD_UTF8_MARK = "\ue000"
BAD_UTF8 = b"\xff\xfe"

#: (event name or None, data) pairs: the SSE events one neutral event becomes.
Payloads = list[tuple[str | None, bytes]]


class SSEFramer:
    """Formats fields and events with the stream's line ending and spacing."""

    def __init__(self, wire: Wire) -> None:
        self.eol = LINE_ENDINGS[wire.line_ending]
        self.sep = b":" if wire.no_space else b": "
        self.wire = wire

    def field(self, name: bytes, value: bytes) -> bytes:
        return name + self.sep + value + self.eol

    def event(self, data: bytes, *, name: str | None = None, id: int | None = None) -> bytes:
        out = b""
        if name is not None:
            out += self.field(b"event", name.encode())
        if id is not None:
            out += self.field(b"id", str(id).encode())
        return out + self.field(b"data", data) + self.eol

    def preamble(self) -> bytes:
        """BOM, ``retry:`` and a leading comment. The fields belong to the first event's block,
        so no blank line follows them (a field-only block makes some clients emit an empty event)."""
        wire = self.wire
        out = BOM if wire.bom else b""
        if wire.comment_first is not None:
            out += b":" + wire.comment_first.encode() + self.eol
        if wire.retry is not None:
            out += self.field(b"retry", str(wire.retry).encode())
        return out

    def keepalive(self, line: str) -> bytes:
        """``line`` then a blank line, or a bare blank line when ``line`` is empty."""
        return line.encode() + self.eol + self.eol if line else self.eol


class SSEEncoder(ABC):
    """Encodes the neutral events of one stream for an SSE-based API.

    Stateful only in two small ways: the running ``id:`` counter and the bytes of the event being
    written in two fragments (so both halves come from one encoding).
    """

    def __init__(self, wire: Wire) -> None:
        self.framer = SSEFramer(wire)
        self._ids = wire.event_ids
        self._next_id = 0
        self._fragment: tuple[Event, bytes] | None = None

    @abstractmethod
    def payloads(self, event: Token | Finish | Done | StreamError) -> Payloads:
        """The SSE events (name and data) of a token, finish, end sentinel or in-stream error."""

    def encode(self, event: Event) -> bytes:
        match event:
            case Token() | Finish() | Done() | StreamError():
                return b"".join(self._frame(name, data) for name, data in self.payloads(event))
            case Preamble():
                return self.framer.preamble()
            case KeepAlive(line=line):
                return self.framer.keepalive(line)
            case Malformed():
                return self.malformed(event)
            case Fragment():
                return self.fragment(event)
            case Close() | Hang():
                return b""
        raise TypeError(f"cannot encode {event!r}")  # pragma: no cover - Event is a closed union

    def _frame(self, name: str | None, data: bytes) -> bytes:
        if not self._ids:
            return self.framer.event(data, name=name)
        self._next_id += 1
        return self.framer.event(data, name=name, id=self._next_id)

    def malformed(self, event: Malformed) -> bytes:
        eol = self.framer.eol
        if event.kind == "raw":
            return event.raw
        if event.kind == "not-json":
            return self.framer.field(b"data", b"hello") + eol
        if event.kind == "bad-utf8":
            index = event.next.index if isinstance(event.next, Token) else 0
            name, data = self._imitated(Token(index, _BAD_UTF8_MARK))
            return self._frame(name, data.replace(_BAD_UTF8_MARK.encode(), BAD_UTF8))
        name, data = self._imitated(event.next)
        if event.kind == "invalid-json":  # a trailing comma: looks right, does not parse
            return self._frame(name, data[:-1] + b",}")
        if event.kind == "truncated-json":
            return self.framer.field(b"data", data[: len(data) // 2]) + eol
        if event.kind == "missing-prefix":
            return data + eol + eol
        raise ValueError(f"unknown malformed kind {event.kind!r}")

    def _imitated(self, event: Event) -> tuple[str | None, bytes]:
        """The first payload of the event a malformed line imitates."""
        if isinstance(event, Token | Finish | Done | StreamError):
            return self.payloads(event)[0]
        return self._imitated(Token(0, ""))  # pragma: no cover - faults precede tokens or finish

    def fragment(self, fragment: Fragment) -> bytes:
        if self._fragment is None or self._fragment[0] is not fragment.event:
            self._fragment = (fragment.event, self.encode(fragment.event))
        data = self._fragment[1]
        cut = cut_point(data, fragment.cut)
        if fragment.part == "tail":
            self._fragment = None
            return data[cut:]
        return data[:cut]


def cut_point(data: bytes, cut: str) -> int:
    """Where to cut ``data``: in the middle, or just after the lead byte of its first multi-byte
    UTF-8 character (lead bytes are 0xC2-0xF4; continuation bytes are 0x80-0xBF)."""
    if cut == "utf8":
        for index, byte in enumerate(data):
            if byte >= 0xC0:
                return index + 1
    return max(1, len(data) // 2)
