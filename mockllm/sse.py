"""Server-Sent Events framing. Pure, no I/O.

Follows the WHATWG event-stream format (https://html.spec.whatwg.org/multipage/server-sent-events.html
§9.2.5). The wire options (:class:`~mockllm.scenario.Wire`) deliberately produce streams that are
legal but unusual (CR line endings, a BOM, ``data:`` without a space), because those are what break
real clients.
"""

from __future__ import annotations

import json

from .encoder import cut_point, damaged
from .events import Cut
from .scenario import Wire

LINE_ENDINGS = {"lf": b"\n", "crlf": b"\r\n", "cr": b"\r"}
BOM = "\ufeff".encode()
#: The keep-alive of SSE formats that have none of their own: a comment, ignored by parsers.
COMMENT_KEEPALIVE = ": ping"


class SSEFramer:
    """Formats fields and events with the stream's line ending and spacing."""

    def __init__(self, wire: Wire) -> None:
        self.eol = LINE_ENDINGS[wire.line_ending]
        self.sep = b":" if wire.no_space else b": "
        self.wire = wire

    @property
    def event_ids(self) -> bool:
        return self.wire.event_ids

    @property
    def uniform(self) -> bool:
        return not (self.wire.event_ids or self.wire.multiline_data)

    def field(self, name: bytes, value: bytes) -> bytes:
        return name + self.sep + value + self.eol

    def event(self, data: bytes, *, name: str | None = None, id: int | None = None) -> bytes:
        out = b""
        if name is not None:
            out += self.field(b"event", name.encode())
        if id is not None:
            out += self.field(b"id", str(id).encode())
        if self.wire.multiline_data:
            return out + b"".join(self.field(b"data", line) for line in _lines(data)) + self.eol
        return out + self.field(b"data", data) + self.eol

    def misframed(self, data: bytes) -> bytes:
        """The data without ``data:``: to a spec parser, a line naming an unknown field."""
        return data + self.eol + self.eol

    def preamble(self) -> bytes:
        """BOM, a leading comment and ``retry:``. The fields belong to the first event's block, so
        no blank line follows them (a field-only block makes some clients emit an empty event)."""
        wire = self.wire
        out = BOM if wire.bom else b""
        if wire.comment_first is not None:
            out += b":" + wire.comment_first.encode() + self.eol
        if wire.retry is not None:
            out += self.field(b"retry", str(wire.retry).encode())
        return out

    def keepalive(self, line: str | None) -> bytes:
        """``line`` then a blank line, or a bare blank line when ``line`` is empty."""
        if line is None:
            line = COMMENT_KEEPALIVE
        return line.encode() + self.eol + self.eol if line else self.eol

    def comment(self, line: str, *, inside: bool) -> bytes:
        """``line`` as a comment block (a blank line after it), or a line inside the next event."""
        return line.encode() + self.eol if inside else self.keepalive(line)

    def bad_crc(self, frame: bytes) -> bytes:
        """No checksum to get wrong: the damage a CRC would have caught reaches the parser."""
        return damaged(frame)

    def cut(self, frame: bytes, cut: Cut) -> int:
        return cut_point(frame, cut)


def _lines(data: bytes) -> list[bytes]:
    """JSON ``data`` pretty-printed, one ``data:`` line per line (a parser joins them with ``\n``,
    which JSON reads as whitespace); anything else, one line."""
    try:
        value = json.loads(data)
    except ValueError:
        return [data]
    if not isinstance(value, dict | list):
        return [data]
    return json.dumps(value, indent=1, ensure_ascii=False).encode().split(b"\n")
