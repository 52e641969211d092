"""Newline-delimited JSON framing (Ollama's native API): one JSON object per line. Pure, no I/O.

Of the wire options, ``line_ending`` and ``bom`` apply; the SSE-only ones (``event_ids``,
``retry``, ``comment_first``, ``no_space``) do not exist in NDJSON and are ignored.
"""

from __future__ import annotations

from .encoder import cut_point, damaged
from .events import Cut
from .scenario import Wire
from .sse import BOM, LINE_ENDINGS


class NDJSONFramer:
    def __init__(self, wire: Wire) -> None:
        self.eol = LINE_ENDINGS[wire.line_ending]
        self.wire = wire

    @property
    def event_ids(self) -> bool:
        return False

    @property
    def uniform(self) -> bool:
        return True

    def event(self, data: bytes, *, name: str | None = None, id: int | None = None) -> bytes:
        return data + self.eol

    def misframed(self, data: bytes) -> bytes:
        """The line as an SSE event, as a proxy that speaks the wrong protocol would send it."""
        return b"data: " + data + self.eol + self.eol

    def preamble(self) -> bytes:
        return BOM if self.wire.bom else b""

    def comment(self, line: str, *, inside: bool) -> bytes:
        """NDJSON has no comments: a line that is not JSON."""
        return line.encode() + self.eol

    def keepalive(self, line: str | None) -> bytes:
        """NDJSON has no keep-alive: a blank line (``None``), or ``line``, breaks strict readers."""
        return (line or "").encode() + self.eol

    def bad_crc(self, frame: bytes) -> bytes:
        """No checksum to get wrong: the damage a CRC would have caught reaches the parser."""
        return damaged(frame)

    def cut(self, frame: bytes, cut: Cut) -> int:
        return cut_point(frame, cut)
