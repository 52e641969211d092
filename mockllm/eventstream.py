"""AWS event-stream framing (``application/vnd.amazon.eventstream``), as Bedrock streams. Pure, no I/O.

One message on the wire (big-endian), as botocore's decoder reads it
(``botocore/eventstream.py``: ``DecodeUtils.unpack_prelude``, ``EventStreamBuffer``)::

    total length    uint32   the whole message, these 4 bytes and the message CRC included
    headers length  uint32
    prelude CRC     uint32   CRC32 of the 8 bytes before it
    headers         name length (uint8), name (UTF-8), value type (uint8; 7 = string),
                    value length (uint16), value (UTF-8); repeated
    payload         the event's JSON
    message CRC     uint32   CRC32 of everything before it, prelude CRC included

botocore checks the prelude CRC, then the message CRC (``_validate_checksum``, raising
``ChecksumMismatch``), then parses the headers. A message whose ``:message-type`` is ``event``
names its member in ``:event-type``; one that is ``exception`` names it in ``:exception-type``
(``BaseEventStreamParser._do_error_parse``), and botocore raises ``EventStreamError`` with that
code. Which member names are exceptions is the service model's say (``bedrock-runtime``
``service-2.json``: the members of ``ConverseStreamOutput`` and ``ResponseStream`` whose shapes
have ``"exception": true``): :data:`EXCEPTIONS`.

The event stream has no keep-alive, no event ids and no preamble: :class:`EventStreamFramer`
writes nothing for them (any bytes between messages would be read as a prelude).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable

from .encoder import cut_point
from .events import Cut

CONTENT_TYPE = "application/vnd.amazon.eventstream"
#: The bytes before the headers: total length, headers length, prelude CRC.
PRELUDE = 12
_STRING = 7  # the header value type of a UTF-8 string
#: The stream members that are exceptions (bedrock-runtime service-2.json, ConverseStreamOutput
#: and ResponseStream): their messages are ``:message-type: exception``.
EXCEPTIONS = frozenset(
    {
        "internalServerException",
        "modelStreamErrorException",
        "modelTimeoutException",
        "serviceUnavailableException",
        "throttlingException",
        "validationException",
    }
)


def crc32(data: bytes, start: int = 0) -> int:
    return zlib.crc32(data, start) & 0xFFFFFFFF


def headers(pairs: Iterable[tuple[str, str]]) -> bytes:
    """String headers, in order."""
    out = b""
    for name, value in pairs:
        key, text = name.encode(), value.encode()
        out += struct.pack("!B", len(key)) + key + struct.pack("!BH", _STRING, len(text)) + text
    return out


def message(pairs: Iterable[tuple[str, str]], payload: bytes) -> bytes:
    """One whole message: prelude, headers, payload, message CRC."""
    head = headers(pairs)
    total = PRELUDE + len(head) + len(payload) + 4
    prelude = struct.pack("!II", total, len(head))
    body = prelude + struct.pack("!I", crc32(prelude)) + head + payload
    return body + struct.pack("!I", crc32(body))


def event(member: str, payload: bytes) -> bytes:
    """The message of stream member ``member``: an event, or an exception if it is one."""
    if member in EXCEPTIONS:
        kind = [
            (":exception-type", member),
            (":content-type", "application/json"),
            (":message-type", "exception"),
        ]
        return message(kind, payload)
    return message(
        [(":event-type", member), (":content-type", "application/json"), (":message-type", "event")], payload
    )


def with_bad_crc(data: bytes) -> bytes:
    """A message as it arrives damaged: its message CRC (the last 4 bytes) off by one bit."""
    (crc,) = struct.unpack("!I", data[-4:])
    return data[:-4] + struct.pack("!I", crc ^ 1)


def payload_span(data: bytes) -> tuple[int, int]:
    """Where a message's payload starts and ends."""
    total, header_length = struct.unpack("!II", data[:8])
    return PRELUDE + header_length, total - 4


class EventStreamFramer:
    """The :class:`~mockllm.encoder.Framer` of the event stream: ``name`` is the stream member."""

    eol = b""

    @property
    def event_ids(self) -> bool:
        return False

    @property
    def uniform(self) -> bool:
        return False  # the length prelude and CRCs differ with every payload

    def comment(self, line: str, *, inside: bool) -> bytes:
        """Nothing: the event stream has no comments (bytes between messages would be read as
        the next prelude)."""
        return b""

    def event(self, data: bytes, *, name: str | None = None, id: int | None = None) -> bytes:
        return event(name or "chunk", data)

    def misframed(self, data: bytes) -> bytes:
        """The payload without its message around it: JSON where a prelude should be."""
        return data

    def preamble(self) -> bytes:
        return b""

    def keepalive(self, line: str | None) -> bytes:
        """Nothing: the event stream has no keep-alive, and a ``line`` between messages would be
        read as the next prelude. A stall with keep-alives is a silent stall here."""
        return b""

    def bad_crc(self, frame: bytes) -> bytes:
        return with_bad_crc(frame)

    def cut(self, frame: bytes, cut: Cut) -> int:
        """Where a split cuts the messages of one event: at a byte offset as given; ``half`` in
        the middle; ``open`` before the last message's CRC; ``utf8`` after the lead byte of the
        first multi-byte character in a payload, else in the middle of the last message's payload
        (the one that carries the token)."""
        if cut == "open":  # ``unterminated``: the last message without its CRC, never complete
            return max(1, len(frame) - 4)
        if cut != "utf8":
            return cut_point(frame, cut)
        start = end = offset = 0
        while offset + PRELUDE <= len(frame):
            start, end = payload_span(frame[offset:])
            start, end = offset + start, offset + end
            if any(byte >= 0xC0 for byte in frame[start:end]):
                return start + cut_point(frame[start:end], "utf8")
            offset = end + 4
        return start + max(1, (end - start) // 2)
