"""A raw-socket HTTP/1.1 client for tests that must see the bytes and the TCP ending exactly.

It timestamps every ``recv``, tells a clean FIN from a reset from a timeout, and parses chunked
framing itself, keeping each chunk (one chunk is one write on aiohttp's side).
"""

from __future__ import annotations

import json
import socket
import time
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

Ending = Literal["fin", "reset", "timeout"]


@dataclass
class RawResponse:
    head: bytes
    body: bytes  # everything after the header block, still framed
    reads: list[tuple[float, bytes]] = field(repr=False)  # (seconds since the request, data)
    ending: Ending = "fin"

    @property
    def status(self) -> int:
        return int(self.head.split(b" ", 2)[1])

    def header(self, name: str) -> str | None:
        for line in self.head.split(b"\r\n")[1:]:
            key, _, value = line.partition(b":")
            if key.strip().lower() == name.lower().encode():
                return value.strip().decode()
        return None

    @property
    def chunked(self) -> bool:
        return (self.header("transfer-encoding") or "").lower() == "chunked"

    def chunks(self) -> tuple[list[bytes], bool]:
        """The chunks of a chunked body, and whether the terminating zero chunk arrived."""
        data, chunks = self.body, []
        while data:
            size_line, sep, rest = data.partition(b"\r\n")
            if not sep:
                break
            size = int(size_line, 16)
            if size == 0:
                return chunks, True
            chunks.append(rest[:size])
            data = rest[size + 2 :]
        return chunks, False

    @property
    def payload(self) -> bytes:
        """The body without its framing."""
        return b"".join(self.chunks()[0]) if self.chunked else self.body


def post(
    url: str,
    body: dict[str, object] | bytes,
    *,
    headers: dict[str, str] | None = None,
    timeout: float = 5.0,
    read_for: float | None = None,
    stall: float = 0.0,
) -> RawResponse:
    """POST and read until the server ends the connection, or ``timeout`` seconds of silence
    (or ``read_for`` seconds in all). ``stall``: a slow reader, with a 4 KB receive buffer, that
    reads nothing for that many seconds after sending the request."""
    return exchange(url, request_bytes(url, body, headers), timeout=timeout, read_for=read_for, stall=stall)


def get(
    url: str, *, headers: dict[str, str] | None = None, timeout: float = 5.0, read_for: float | None = None
) -> RawResponse:
    """GET ``url`` (path and query) and read as :func:`post` does."""
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    lines = [
        f"GET {target} HTTP/1.1",
        f"Host: {parts.netloc}",
        "Accept: text/event-stream",
        "Connection: close",
        *(f"{k}: {v}" for k, v in (headers or {}).items()),
    ]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode()
    return exchange(url, request, timeout=timeout, read_for=read_for)


def exchange(
    url: str, request: bytes, *, timeout: float = 5.0, read_for: float | None = None, stall: float = 0.0
) -> RawResponse:
    """Send ``request`` to ``url``'s host and read the answer (see :func:`post`)."""
    parts = urlsplit(url)
    reads: list[tuple[float, bytes]] = []
    ending: Ending = "fin"
    with socket.socket() as sock:
        if stall:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(timeout)
        sock.connect((parts.hostname, parts.port))
        start = time.monotonic()
        sock.sendall(request)
        time.sleep(stall)  # the client under test is busy: what piles up is the server's problem
        while True:
            if read_for is not None:
                left = start + read_for - time.monotonic()
                if left <= 0:
                    ending = "timeout"
                    break
                sock.settimeout(min(timeout, left))
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                ending = "reset"
                break
            except TimeoutError:
                ending = "timeout"
                break
            if not data:
                break
            reads.append((time.monotonic() - start, data))
    raw = b"".join(data for _, data in reads)
    head, _, rest = raw.partition(b"\r\n\r\n")
    return RawResponse(head, rest, reads, ending)


def request_bytes(url: str, body: dict[str, object] | bytes, headers: dict[str, str] | None = None) -> bytes:
    """The bytes of a POST of ``body`` to ``url`` (``Connection: close``)."""
    parts = urlsplit(url)
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    lines = [
        f"POST {parts.path} HTTP/1.1",
        f"Host: {parts.netloc}",
        "Content-Type: application/json",
        f"Content-Length: {len(content)}",
        "Connection: close",
        *(f"{k}: {v}" for k, v in (headers or {}).items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + content


def stream_body(model: str = "m") -> dict[str, object]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": True}
