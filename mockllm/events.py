"""The neutral events a timeline is made of.

A timeline says *what* happens on a stream and *when*; an encoder (one per wire format) turns each
event into bytes; the streaming layer writes those bytes at their deadlines. Events know nothing of
any wire format, so one scenario and its faults serve every API.

Two kinds of event end a stream: :class:`Close` (by one of the three TCP endings) and :class:`Hang`
(hold the connection open and silent until the client gives up).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias

CloseMode = Literal["eof", "fin", "reset"]
Part = Literal["head", "tail"]
#: Where an event's bytes are cut: the middle, after the lead byte of its first multi-byte
#: character, before its closing line ending (``open``: the event is never closed), or at a
#: byte offset (negative: from the end).
Cut = Literal["half", "utf8", "open"] | int


@dataclass(frozen=True, slots=True)
class Preamble:
    """Whatever the wire options put before the first event (BOM, ``retry:``, a comment)."""


@dataclass(frozen=True, slots=True)
class Token:
    """One token: of the reply's text, or (``tool`` set) a fragment of a tool call's arguments.

    ``index`` counts every token of the stream, text and tool fragments alike (what a fault's
    ``at`` refers to); ``first`` is true for the first token actually sent.
    """

    index: int
    text: str
    first: bool = False
    tool: int | None = None


@dataclass(frozen=True, slots=True)
class Chunk:
    """One read of a ``transcript``: bytes sent as they are, in any format. ``index`` is what a
    fault's ``at`` refers to."""

    index: int
    data: bytes


@dataclass(frozen=True, slots=True)
class ToolCallStart:
    """A tool call begins (before its first argument fragment). ``first``: nothing was sent before."""

    tool: int
    id: str | None
    name: str
    first: bool = False


@dataclass(frozen=True, slots=True)
class ToolCallEnd:
    """A tool call's last argument fragment was sent; ``arguments`` is its whole JSON text."""

    tool: int
    id: str | None
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class Finish:
    """The end of the reply: its finish reason and how many tokens were sent."""

    reason: str
    completion_tokens: int
    first: bool = False  # no token was sent before: this event opens the reply
    #: (category, severity) when a content filter stopped the reply (``content_filter`` fault)
    filtered: tuple[str, str] | None = None


@dataclass(frozen=True, slots=True)
class Done:
    """The format's end-of-stream sentinel (``data: [DONE]`` for OpenAI)."""


@dataclass(frozen=True, slots=True)
class KeepAlive:
    """A keep-alive written during a stall: ``line`` verbatim, or (``None``) the format's own
    keep-alive (an SSE comment, Anthropic's ``ping`` event, a blank NDJSON line)."""

    line: str | None = None


@dataclass(frozen=True, slots=True)
class Comment:
    """An SSE comment line ``: text``: a block of its own (a blank line after it), or
    (``inside``) a line of the next event's block."""

    text: str
    inside: bool = False


@dataclass(frozen=True, slots=True)
class Malformed:
    """A malformed line before ``next`` (the event it imitates or precedes)."""

    kind: str  # invalid-json, truncated-json, not-json, missing-prefix, bad-utf8, bad-crc, raw
    next: Event
    raw: bytes = b""


@dataclass(frozen=True, slots=True)
class StreamError:
    """The API's error object sent inside a stream."""

    message: str
    type: str | None = None  # None: the format's usual type for an in-stream error
    code: str | int | None = None
    #: The SSE event name, for formats whose errors have none of their own (``event: error``,
    #: as some OpenAI-compatible gateways send); None: the format's own.
    event: str | None = None


@dataclass(frozen=True, slots=True)
class Fragment:
    """One part of ``event``'s bytes, written on its own.

    ``cut="half"`` cuts the encoded event in the middle; ``cut="utf8"`` cuts just after the
    lead byte of its first multi-byte UTF-8 character, so no per-read decoder can decode either half;
    an ``int`` cuts at that byte (from the end if negative: ``-1`` splits a final CRLF).
    """

    event: Event
    part: Part
    cut: Cut


@dataclass(frozen=True, slots=True)
class Close:
    """End the connection: ``eof`` (clean end of body), ``fin`` (FIN, body incomplete), ``reset`` (RST)."""

    mode: CloseMode
    outcome: str  # what the call log says happened, e.g. "fault:reset"


@dataclass(frozen=True, slots=True)
class Hang:
    """Hold the connection open and send nothing until the client leaves."""


Event: TypeAlias = (
    Preamble
    | Token
    | Chunk
    | ToolCallStart
    | ToolCallEnd
    | Finish
    | Done
    | KeepAlive
    | Comment
    | Malformed
    | StreamError
    | Fragment
    | Close
    | Hang
)
#: The events whose bytes a wire format decides (the rest are handled alike by every format).
Payload: TypeAlias = Token | ToolCallStart | ToolCallEnd | Finish | Done | StreamError


@dataclass(frozen=True, slots=True)
class Step:
    """An event and its deadline, in seconds from the start of the stream."""

    deadline: float
    event: Event
