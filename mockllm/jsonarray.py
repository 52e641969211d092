"""A JSON array streamed element by element (Gemini's ``streamGenerateContent`` without
``alt=sse``). Pure, no I/O.

Google writes ``[`` before the first element, ``\\n,\\r\\n`` between elements and ``\\n]`` at the
end, each element pretty-printed over several lines; the body is one JSON document only once it
has ended. Readers must find where an element ends (google-genai never asks for this framing:
it always sends ``alt=sse``; its fallback for lines without ``data:``, ``_RawJsonLineBuffer`` in
``google/genai/_api_client.py``, gathers lines until their braces balance, which an element
opening with ``[`` never does on its own).

The faults in this framing's terms: ``malformed: missing-prefix`` drops the separator before an
element (``}{``: concatenated JSON, not an array); a keep-alive without a ``line`` is a line break,
whitespace that JSON allows between elements but line-based readers see as an empty line; the
end sentinel is the closing ``]`` (``done: false`` leaves the array open); a ``comment`` is a
line that is not JSON; ``malformed: bad-crc`` damages the element's JSON; ``unterminated`` holds
the element's last byte back. JSON has no line
endings to choose, so ``line_ending`` does not apply, and neither do the SSE-only options
(``event_ids``, ``retry``, ``comment_first``, ``no_space``); ``bom`` does.
"""

from __future__ import annotations

from .encoder import cut_point, damaged
from .events import Cut
from .scenario import Wire
from .sse import BOM

#: Between two elements, as Google writes it.
SEPARATOR = b"\n,\r\n"


class JSONArrayFramer:
    def __init__(self, wire: Wire) -> None:
        self.eol = b"\n"
        self.wire = wire
        self.opened = False  # the ``[`` is written

    @property
    def event_ids(self) -> bool:
        return False

    @property
    def uniform(self) -> bool:
        """The first element comes after ``[``, the others after a separator."""
        return False

    def _before(self) -> bytes:
        if self.opened:
            return SEPARATOR
        self.opened = True
        return b"["

    def event(self, data: bytes, *, name: str | None = None, id: int | None = None) -> bytes:
        return self._before() + data

    def misframed(self, data: bytes) -> bytes:
        """The element without the ``[`` or ``,`` before it."""
        self._before()
        return data

    def close(self) -> bytes:
        """The end of the array (``[]`` if no element was written)."""
        return b"\n]" if self.opened else b"[]"

    def preamble(self) -> bytes:
        return BOM if self.wire.bom else b""

    def keepalive(self, line: str | None) -> bytes:
        """A line break (``None``), or ``line`` and a line break."""
        return (line or "").encode() + self.eol

    def comment(self, line: str, *, inside: bool) -> bytes:
        """JSON has no comments: ``line`` and a line break, between elements (or, ``inside``, just
        before the next one), which the array's parser meets as a syntax error."""
        return line.encode() + self.eol

    def bad_crc(self, frame: bytes) -> bytes:
        """No checksum to get wrong: the damage a CRC would have caught reaches the parser."""
        return damaged(frame)

    def cut(self, frame: bytes, cut: Cut) -> int:
        """Where a split cuts ``frame``; ``open`` (``unterminated``) keeps the element's last byte
        back, so it never completes."""
        if cut == "open":
            return max(len(frame) - 1, 1)
        return cut_point(frame, cut)
