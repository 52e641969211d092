"""The blocks of a recorded body: its reads cut at the wire's boundaries. Pure.

SSE (the WHATWG event-stream format): a block is everything up to and with the blank line that ends
an event (a blank line alone is a block too); NDJSON: a line. Each block keeps when its first and last
byte arrived and how many of its bytes came in the first of its reads, which is what a recording
needs to tell a split event or a stall in the middle of one from a whole event.
:func:`sse_event` reads one SSE block: an event, a keep-alive, or bytes no parser makes an event of.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .sse import BOM


@dataclass(frozen=True)
class Block:
    """One block of the wire: its bytes, when its first and last byte arrived (seconds since the
    response's headers), and ``head``: its bytes in the read that brought its first byte."""

    raw: bytes
    start: float
    end: float
    head: int

    @property
    def whole(self) -> bool:
        return self.head >= len(self.raw)


@dataclass(frozen=True)
class KeepAlive:
    """``line`` as the scenario's ``keepalive.line`` says it; None: the format's own keep-alive."""

    line: str | None = None


@dataclass(frozen=True)
class Raw:
    """A block the API would not send (a malformed line), as its bytes."""

    data: bytes


class _Reads:
    """The reads joined, and which read a byte offset came in."""

    def __init__(self, reads: Sequence[tuple[float, bytes]]) -> None:
        self.data = b"".join(data for _, data in reads)
        self.times = [time for time, _ in reads]
        self.ends: list[int] = []
        total = 0
        for _, data in reads:
            total += len(data)
            self.ends.append(total)

    def block(self, start: int, end: int) -> Block:
        first = bisect.bisect_right(self.ends, start)
        last = bisect.bisect_right(self.ends, end - 1)
        return Block(self.data[start:end], self.times[first], self.times[last], self.ends[first] - start)


def line_ending(data: bytes) -> bytes:
    """The line ending of ``data``: the first one in it (LF if it has none)."""
    for index, byte in enumerate(data):
        if byte == 0x0A:
            return b"\n"
        if byte == 0x0D:
            return b"\r\n" if data[index + 1 : index + 2] == b"\n" else b"\r"
    return b"\n"


EOLS = {b"\n": "lf", b"\r\n": "crlf", b"\r": "cr"}


def sse_blocks(reads: Sequence[tuple[float, bytes]], wire: dict[str, Any]) -> tuple[list[Block], bytes]:
    """The SSE blocks of ``reads`` (each up to and with the blank line that ends it; a blank line
    alone is a block) and the bytes after the last; notes a BOM and the line ending in ``wire``."""

    def end_of(data: bytes, pos: int, eol: bytes) -> int:
        if data.startswith(eol, pos):
            return pos + len(eol)
        found = data.find(eol + eol, pos)
        return -1 if found < 0 else found + 2 * len(eol)

    return _cut(reads, wire, end_of)


def line_blocks(reads: Sequence[tuple[float, bytes]], wire: dict[str, Any]) -> tuple[list[Block], bytes]:
    """The lines of an NDJSON body (each with its line ending) and the bytes after the last."""

    def end_of(data: bytes, pos: int, eol: bytes) -> int:
        found = data.find(eol, pos)
        return -1 if found < 0 else found + len(eol)

    return _cut(reads, wire, end_of)


def _cut(
    reads: Sequence[tuple[float, bytes]], wire: dict[str, Any], end_of: Callable[[bytes, int, bytes], int]
) -> tuple[list[Block], bytes]:
    joined = _Reads(reads)
    data = joined.data
    pos = 0
    if data.startswith(BOM):
        wire["bom"] = True
        pos = len(BOM)
    eol = line_ending(data)
    if eol != b"\n":
        wire["line_ending"] = EOLS[eol]
    blocks = []
    while pos < len(data):
        end = end_of(data, pos, eol)
        if end < 0:
            break
        blocks.append(joined.block(pos, end))
        pos = end
    return blocks, data[pos:]


@dataclass
class SSEEvent:
    name: str | None
    data: str
    id: str | None = None


def sse_event(block: Block, wire: dict[str, Any], *, first: bool) -> SSEEvent | KeepAlive | Raw:
    """One SSE block as an event, a keep-alive (a comment, a blank line, an empty ``data:``) or,
    when a spec parser would make no event of it or its text is not UTF-8, its raw bytes.
    The first block may carry the preamble (a comment, ``retry:``) before its event's fields."""
    eol = {"crlf": b"\r\n", "cr": b"\r"}.get(wire.get("line_ending", ""), b"\n")
    try:
        text = block.raw.decode("utf-8")
    except UnicodeDecodeError:
        return Raw(block.raw)
    if block.raw == eol:
        return KeepAlive("")  # a blank line alone
    lines = text[: -2 * len(eol)].split(eol.decode())
    if len(lines) == 1 and (lines[0].startswith(":") or lines[0] in ("data:", "data: ")):
        return KeepAlive(lines[0])  # a comment, or an empty data field
    fields: dict[str, list[str]] = {}
    comment: str | None = None
    for index, line in enumerate(lines):
        if line.startswith(":"):
            if not (first and index == 0):
                return Raw(block.raw)
            comment = line[1:]
            continue
        name, colon, value = line.partition(":")
        if not colon or name not in ("data", "event", "id", "retry"):
            return Raw(block.raw)
        if value.startswith(" "):
            value = value[1:]
        elif value:
            wire["no_space"] = True
        fields.setdefault(name, []).append(value)
    if "data" not in fields or ("retry" in fields and not first):
        return Raw(block.raw)
    if comment is not None:
        wire["comment_first"] = comment
    if "retry" in fields and fields["retry"][0].isdigit():
        wire["retry"] = int(fields["retry"][0])
    if "id" in fields:
        wire["event_ids"] = True
    event = fields["event"][-1] if "event" in fields else None
    return SSEEvent(event, "\n".join(fields["data"]), fields["id"][-1] if "id" in fields else None)
