"""The server's :class:`~mockllm.streaming.Sink`: an aiohttp response, and its connection's end.

Written to by :func:`~mockllm.streaming.play` (and by the record proxy, which ends a stream the
way its upstream did). Chunked writes go straight to the transport while the peer keeps up
(:meth:`ResponseSink.write_now`, in the framing aiohttp would write); the endings of
:data:`~mockllm.events.CloseMode` are here: the terminating chunk, FIN, or RST.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Awaitable

from aiohttp import hdrs, web

from .events import CloseMode


class ResponseSink:
    """Writes to an aiohttp response that has been prepared, and ends its connection on demand."""

    #: Above this many bytes waiting in the socket's buffer, :meth:`write_now` declines (aiohttp
    #: drains at the same size).
    HIGH_WATER = 0x10000

    __slots__ = ("_chunked", "_direct", "_transport", "request", "response")

    def __init__(
        self, request: web.BaseRequest, response: web.StreamResponse, *, headers_sent: bool = True
    ) -> None:
        """``response`` is prepared; ``headers_sent``: its headers are on the wire already (else
        aiohttp sends them with the first :meth:`write`, and :meth:`write_now` waits for that)."""
        self.request = request
        self.response = response
        self._chunked = response.headers.get(hdrs.TRANSFER_ENCODING) == "chunked"
        self._direct = self._chunked and headers_sent
        self._transport = request.transport  # the request's property costs a lookup per call

    async def write(self, data: bytes) -> None:
        await self.response.write(data)
        self._direct = self._chunked

    def write_now(self, data: bytes) -> bool:
        """Straight to the transport, in HTTP chunked framing as aiohttp would write it; only for
        a chunked body (the others need aiohttp's length bookkeeping)."""
        transport = self._transport
        if transport is None or transport.is_closing():
            raise ConnectionResetError("the client has gone away")
        if not self._direct or transport.get_write_buffer_size() > self.HIGH_WATER:
            return False
        transport.write(b"%x\r\n%b\r\n" % (len(data), data))
        return True

    async def close(self, mode: CloseMode, last: bytes = b"") -> None:
        if mode == "eof":  # the body ends cleanly: the terminating chunk, or the last declared byte
            await self.response.write_eof(last)
            return
        if last:
            await self.write(last)
        transport = self.request.transport
        if transport is None or transport.is_closing():
            return
        if mode == "reset":
            sock = transport.get_extra_info("socket")
            if sock is not None:  # SO_LINGER 0: close() sends RST instead of FIN
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()
        else:  # FIN after what was written, without the terminating chunk
            transport.close()

    def hang(self) -> Awaitable[None]:
        # A future never set (cancelled when the client leaves), not a coroutine awaiting one:
        # a held stream keeps one frame fewer alive.
        return asyncio.get_running_loop().create_future()
