"""The encoder every wire format builds on: neutral events → bytes. Pure, no I/O.

A wire format subclasses :class:`EventEncoder` and says only what its own events are
(:meth:`EventEncoder.payloads`: the name and data of the events a token, a tool call, a finish,
the end sentinel or an error become). Everything that is the same in every format is here, in
terms of a :class:`Framer` (SSE or NDJSON): the preamble, keep-alives, malformed lines imitating
the next event, and the two fragments of a split event. That is why adding a format never touches
the timeline or the faults.

Stateful only as a stream is: an ``id:`` counter, what a format needs to remember (an open content
block, the text so far), and the bytes of an event being written in two fragments.
"""

from __future__ import annotations

import copy
import functools
import json
from abc import ABC, abstractmethod
from typing import Any, Protocol

from .events import (
    Chunk,
    Close,
    Comment,
    Cut,
    Done,
    Event,
    Finish,
    Fragment,
    Hang,
    KeepAlive,
    Malformed,
    Payload,
    Preamble,
    StreamError,
    Token,
    ToolCallEnd,
    ToolCallStart,
)

#: (event name or None, data) pairs: the wire events one neutral event becomes.
Payloads = list[tuple[str | None, bytes]]

#: Stands in for a token's text when a ``bad-utf8`` line is built from a real event: a private-use
#: character that JSON leaves as is, replaced afterwards by bytes that are not UTF-8.
BAD_UTF8_MARK = "\ue000"
BAD_UTF8 = b"\xff\xfe"
#: A byte no JSON text holds unescaped: marks where a framer puts an event's data.
_SLOT = b"\x00"

#: One encoder for every call: ``json.dumps`` with options builds a new one each time, which is
#: most of its cost on the small objects of a stream's chunks.
_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def dumps(value: Any) -> str:
    """Compact JSON as the APIs send it, with non-ASCII text as raw UTF-8."""
    return _COMPACT.encode(value)


@functools.lru_cache(maxsize=1 << 16)
def json_string(text: str) -> bytes:
    """A token's text as a JSON string, escaped once per distinct token (runes repeat: a reply of
    10,000 runes has a few hundred distinct ones), not once per token sent."""
    return dumps(text).encode()


class Framer(Protocol):
    """How events are framed on the wire (SSE fields, or one JSON object per line)."""

    eol: bytes

    def event(self, data: bytes, *, name: str | None = None, id: int | None = None) -> bytes: ...

    def misframed(self, data: bytes) -> bytes:
        """``data`` in the wrong framing, for ``malformed: missing-prefix``."""
        ...

    def preamble(self) -> bytes: ...

    def keepalive(self, line: str | None) -> bytes:
        """A keep-alive: ``line`` verbatim, or the framing's own for ``None``."""
        ...

    def comment(self, line: str, *, inside: bool) -> bytes:
        """A comment ``line``: a block of its own, or (``inside``) a line of the next event."""
        ...

    def bad_crc(self, frame: bytes) -> bytes:
        """``frame`` (as :meth:`event` made it) damaged as a checksum would catch, for
        ``malformed: bad-crc``: the event stream's message CRC wrong; in a text framing, which
        has no checksum, the damage itself (:func:`damaged`)."""
        ...

    def cut(self, frame: bytes, cut: Cut) -> int:
        """Where a split cuts ``frame`` (:func:`cut_point` for text framings)."""
        ...

    @property
    def event_ids(self) -> bool: ...

    @property
    def uniform(self) -> bool:
        """Every event's data is framed by the same bytes before and after it."""
        ...


class EventEncoder(ABC):
    def __init__(self, framer: Framer) -> None:
        self.framer = framer
        self._next_id = 0
        self._fragment: tuple[Event, bytes] | None = None
        # Set by a format (:meth:`frame_text`) while a text token's bytes are fixed around its
        # text: (head of the stream's first token, head of the others, tail). A text token is then
        # one join of a head, the escaped text and the tail instead of the general path.
        self._text_frame: tuple[bytes, bytes, bytes] | None = None
        #: What comes before and after the escaped text of a text token that is not the stream's
        #: first, while that is fixed (None otherwise): the write loop joins a run of them at once.
        self.text_frame: tuple[bytes, bytes] | None = None

    def frame_text(self, frame: tuple[bytes, bytes, bytes] | None) -> None:
        """Text tokens are ``frame``'s head (the first token's, the others'), the escaped text
        and its tail from now on; None: they take the general path (:meth:`payloads`)."""
        self._text_frame = frame
        self.text_frame = None if frame is None else (frame[1], frame[2])

    @property
    def last_id(self) -> int:
        """The ``id:`` of the last event framed (0 before the first, or without event ids)."""
        return self._next_id

    def continue_after(self, last_id: int) -> None:
        """Number the next event ``last_id + 1`` (a resumed stream continues the ids the client
        saw, though the faults it skips took ids the first time)."""
        self._next_id = max(self._next_id, last_id) if self.framer.event_ids else 0

    def data_frame(self, name: str | None = None) -> tuple[bytes, bytes] | None:
        """What the framer writes before and after the data of an event (named ``name``), when
        that is the same for every event (no ``id:`` counter), else None. A format uses it to send
        its most frequent event, a text token, with one concatenation instead of the general path."""
        if not self.framer.uniform:
            return None
        head, tail = self.framer.event(_SLOT, name=name).split(_SLOT)
        return head, tail

    @abstractmethod
    def payloads(self, event: Payload) -> Payloads:
        """The wire events (name and data) of a token, tool call, finish, sentinel or error."""

    def natural_keepalive(self) -> bytes:
        """The format's own keep-alive (``keepalive`` without a ``line``)."""
        return self.framer.keepalive(None)

    def encode(self, event: Event) -> bytes:
        frame = self._text_frame
        if frame is not None and type(event) is Token and event.tool is None:  # the hot path
            return b"".join((frame[0] if event.first else frame[1], json_string(event.text), frame[2]))
        match event:
            case Preamble():
                return self.framer.preamble()
            case KeepAlive(line=line):
                return self.natural_keepalive() if line is None else self.framer.keepalive(line)
            case Comment(text=text, inside=inside):
                return self.framer.comment(": " + text, inside=inside)
            case Malformed():
                return self.malformed(event)
            case Fragment():
                return self.fragment(event)
            case Chunk(data=data):
                return data
            case Close() | Hang():
                return b""
        return b"".join(self._frame(name, data) for name, data in self.payloads(event))

    def _frame(self, name: str | None, data: bytes) -> bytes:
        if not self.framer.event_ids:
            return self.framer.event(data, name=name)
        self._next_id += 1
        return self.framer.event(data, name=name, id=self._next_id)

    def malformed(self, event: Malformed) -> bytes:
        if event.kind == "raw":
            return event.raw
        if event.kind == "bad-utf8":
            index = event.next.index if isinstance(event.next, Token) else 0
            tool = event.next.tool if isinstance(event.next, Token) else None
            name, data = self._imitated(Token(index, BAD_UTF8_MARK, tool=tool))
            return self._frame(name, data.replace(BAD_UTF8_MARK.encode(), BAD_UTF8))
        name, data = self._imitated(event.next)
        if event.kind == "not-json":
            return self._frame(name, b"hello")
        if event.kind == "invalid-json":  # a trailing comma: looks right, does not parse
            return self._frame(name, data[:-1] + b",}")
        if event.kind == "truncated-json":
            return self._frame(name, data[: len(data) // 2])
        if event.kind == "missing-prefix":
            return self.framer.misframed(data)
        if event.kind == "bad-crc":
            return self.framer.bad_crc(self._frame(name, data))
        raise ValueError(f"unknown malformed kind {event.kind!r}")

    def _imitated(self, event: Event) -> tuple[str | None, bytes]:
        """The last wire event the next event would be, without changing this stream's state."""
        if isinstance(event, Fragment):
            event = event.event
        if not isinstance(event, Token | ToolCallStart | ToolCallEnd | Finish | Done | StreamError):
            event = Token(0, "")  # pragma: no cover - faults precede tokens or the finish
        return copy.deepcopy(self).payloads(event)[-1]

    def fragment(self, fragment: Fragment) -> bytes:
        if self._fragment is None or self._fragment[0] is not fragment.event:
            self._fragment = (fragment.event, self.encode(fragment.event))
        data = self._fragment[1]
        cut = self.framer.cut(data, fragment.cut)
        if fragment.part == "tail":
            self._fragment = None
            return data[cut:]
        return data[:cut]


def damaged(frame: bytes) -> bytes:
    """A text framing's event as a flipped bit in transit leaves it: the last ``}`` of its JSON
    becomes ``|``. The bad CRC of a framing without a checksum: the JSON parser meets the damage."""
    at = max(frame.rfind(b"}"), 0)
    return frame[:at] + bytes((frame[at] ^ 1,)) + frame[at + 1 :]


def cut_point(data: bytes, cut: str | int) -> int:
    """Where to cut ``data``: in the middle, just after the lead byte of its first multi-byte
    UTF-8 character (lead bytes are 0xC2-0xF4; continuation bytes are 0x80-0xBF), or at a byte
    offset (negative: from the end), kept inside so that both parts have a byte."""
    if cut == "open":  # all but the last line ending: the event's last line, never its end
        return len(data) - (2 if data.endswith(b"\r\n") else 1) if len(data) > 1 else len(data)
    if isinstance(cut, int):
        return min(max(1, cut if cut > 0 else len(data) + cut), len(data) - 1) if len(data) > 1 else 1
    if cut == "utf8":
        for index, byte in enumerate(data):
            if byte >= 0xC0:
                return index + 1
    return max(1, len(data) // 2)
