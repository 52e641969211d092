"""The write loop: the only code that writes a stream to a socket and waits for deadlines.

:func:`play` walks a timeline, sleeping until each step's absolute deadline (never "a delay after
the last write", which drifts), encodes the event, and hands bytes to a :class:`Sink`. Events that
are already due together (zero delay, or catching up after the loop fell behind) share one write
unless the scenario says ``flush: event``; a :class:`~mockllm.events.Fragment` is always a write of
its own, since its whole point is the write boundary.

Every way a stream ends goes through here and is recorded in the :class:`Outcome`:
``completed``; a fault (``fault:truncate``, ``fault:fin``, ``fault:reset``, ``fault:mid-event``,
``fault:error_event``, ``fault:stall-forever``); or ``client-disconnected`` when the client hangs
up first (a normal event, not an error).
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Iterable
from typing import Protocol

from aiohttp import web

from .calls import Outcome
from .clock import Clock
from .events import Close, CloseMode, Fragment, Hang, Step, Token
from .formats import StreamEncoder


class Sink(Protocol):
    """Where a stream's bytes go: an HTTP response in the server, a list in tests."""

    async def write(self, data: bytes) -> None: ...

    async def close(self, mode: CloseMode) -> None: ...

    async def hang(self) -> None:
        """Wait, sending nothing, until the client leaves (the task is then cancelled)."""
        ...


async def play(
    steps: Iterable[Step],
    encoder: StreamEncoder,
    sink: Sink,
    clock: Clock,
    *,
    coalesce: bool = True,
    outcome: Outcome | None = None,
) -> Outcome:
    """Write the stream described by ``steps``; return (and fill in) its outcome."""
    out = outcome if outcome is not None else Outcome()
    start = clock.now()
    pending: list[bytes] = []

    async def write(data: bytes) -> None:
        # Record before writing: whoever reads the outcome once the bytes arrive sees them counted.
        now = clock.now()
        if out.first_byte is None:
            out.first_byte = now
        out.last_byte = now
        out.bytes_sent += len(data)
        await sink.write(data)

    async def flush() -> None:
        if pending:
            data = b"".join(pending)
            pending.clear()
            await write(data)

    try:
        for step in steps:
            due = start + step.deadline
            now = clock.now()
            if due > now:
                await flush()
                await clock.sleep_until(due)
                now = clock.now()  # a busy loop wakes us late: that is lateness too
            if now - due > out.max_lateness:
                out.max_lateness = now - due
            event = step.event
            if isinstance(event, Close):
                await flush()
                out.outcome = event.outcome
                await sink.close(event.mode)
                return out
            if isinstance(event, Hang):
                await flush()
                out.outcome = "fault:stall-forever"
                await sink.hang()
                return out
            data = encoder.encode(event)
            if isinstance(event, Token) or (
                isinstance(event, Fragment) and event.part == "tail" and isinstance(event.event, Token)
            ):
                out.tokens_sent += 1
            if not data:
                continue
            if isinstance(event, Fragment) or not coalesce:
                await flush()
                await write(data)
            else:
                pending.append(data)
        await flush()
        out.outcome = "completed"
        await sink.close("eof")
    except ConnectionError:
        out.outcome = "client-disconnected"
    except asyncio.CancelledError:
        out.outcome = "client-disconnected"
        raise
    return out


class ResponseSink:
    """Writes to an aiohttp response that has been prepared, and ends its connection on demand."""

    def __init__(self, request: web.BaseRequest, response: web.StreamResponse) -> None:
        self.request = request
        self.response = response

    async def write(self, data: bytes) -> None:
        await self.response.write(data)

    async def close(self, mode: CloseMode) -> None:
        if mode == "eof":  # the body ends cleanly: the terminating chunk, or the last declared byte
            await self.response.write_eof()
            return
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

    async def hang(self) -> None:
        await asyncio.Event().wait()
