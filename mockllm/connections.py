"""Connections: how many a client may hold open, for how long, and how they end.

aiohttp's ``RequestHandler`` (one per connection) is subclassed here, small and on purpose; each
divergence below was checked against aiohttp 3.14.5 (``web_protocol.py``):

- **Header timeout.** aiohttp has none: a client that trickles a header block one byte a second,
  or sends nothing, holds its socket for ever. A connection must deliver its first complete
  header block within ``header_timeout`` of being accepted, and every later one within
  ``header_timeout`` of its first byte; otherwise it gets ``408`` and a FIN. Between requests
  the idle timeout (aiohttp's ``keepalive_timeout``) applies.
- **Half-close.** asyncio closes a transport whose protocol's ``eof_received()`` returns a falsy
  value, and aiohttp's returns ``None``: a request followed by ``shutdown(SHUT_WR)`` (legal, and
  what some proxies and ``curl`` do) was cut before its answer. A FIN within
  ``HALF_CLOSE_WINDOW`` of a whole request now keeps the transport open for writing, and the
  connection closes after the answer; a later FIN is a client giving up, and still cuts it.
- **Connection limit.** Open connections are counted here; past ``max_connections`` a new one
  is answered with a short 503 and closed at once, and one warning is logged per burst (at most
  one per ``REFUSAL_LOG_INTERVAL``), not one per connection. The default stays below the
  open-file limit, so ``accept()`` never fails with EMFILE (asyncio logs each such failure).
- **Shutdown in one grace period.** aiohttp's ``shutdown(timeout)`` waits ``timeout`` for a
  running handler, then cancels only the request's *body reader* and waits ``timeout`` again; a
  handler waiting on anything else (a stall) does not notice, so stopping took twice
  ``--grace``. Here the handler task is cancelled once the grace period is over.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import resource
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

log = logging.getLogger("mockllm")

#: File descriptors kept free below the open-file limit for everything that is not a client
#: connection (the listening socket, the event loop, logs, scenario files being reloaded).
FD_RESERVE = 128
#: At most one "refusing connections" warning this often (seconds).
REFUSAL_LOG_INTERVAL = 10.0
#: A FIN this soon after the last bytes of a request is a half-close, not a client giving up
#: (seconds; see Connection.eof_received).
HALF_CLOSE_WINDOW = 0.25
#: How long a cancelled handler may take to unwind after the grace period (seconds).
CANCEL_WAIT = 0.25

_REFUSAL_BODY = json.dumps(
    {
        "error": {
            "message": "mockllm has reached --max-connections; retry when some connections close.",
            "type": "server_error",
            "param": None,
            "code": "too_many_connections",
        }
    }
).encode()
REFUSED = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
    b"Content-Length: %d\r\nRetry-After: 1\r\nConnection: close\r\n\r\n" % len(_REFUSAL_BODY)
) + _REFUSAL_BODY
HEADER_TIMEOUT = b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


def open_file_limit() -> int:
    """The soft limit on open files of this process."""
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def raise_open_file_limit() -> int:
    """Raise the soft open-file limit to the hard one (a process may, unprivileged); return the
    soft limit now in force. An unlimited hard limit is left to the soft one's current value
    rather than guessed at (macOS refuses anything above its OPEN_MAX)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return open_file_limit()


def default_max_connections(fd_limit: int | None = None) -> int:
    """Below the open-file limit by ``FD_RESERVE`` (or half of it, if that limit is tiny)."""
    limit = open_file_limit() if fd_limit is None else fd_limit
    return max(limit - FD_RESERVE, limit // 2, 1)


@dataclass(frozen=True)
class Limits:
    """What a client connection may take: seconds to send a header block, seconds idle between
    requests, and how many connections may be open at once (``None``: the open-file limit less
    ``FD_RESERVE``, read when the server starts)."""

    header_timeout: float = 10.0
    idle_timeout: float = 75.0
    max_connections: int | None = None

    def connection_limit(self) -> int:
        return self.max_connections if self.max_connections is not None else default_max_connections()


class Gate:
    """Counts open connections and refuses those past ``limit``, logging once per burst."""

    def __init__(self, limit: int, time: Callable[[], float]) -> None:
        self.limit = limit
        self.open = 0
        self.refused = 0
        self._time = time
        self._logged_at: float | None = None

    def admit(self) -> bool:
        if self.open < self.limit:
            self.open += 1
            return True
        self.refused += 1
        now = self._time()
        if self._logged_at is None or now - self._logged_at >= REFUSAL_LOG_INTERVAL:
            log.warning(
                "mockllm: %d connections open, the --max-connections limit: refusing new ones with "
                "503 (%d so far; this warning repeats at most every %gs)",
                self.open,
                self.refused,
                REFUSAL_LOG_INTERVAL,
            )
            self._logged_at = now
        return False

    def release(self) -> None:
        self.open -= 1


class Connection(RequestHandler):
    """aiohttp's per-connection protocol with the limits above (see the module docstring)."""

    __slots__ = ("_admitted", "_gate", "_header_timeout", "_header_timer", "_last_data_at", "_last_payload")

    def __init__(self, manager: web.Server, *, limits: Limits, gate: Gate, **kwargs: Any) -> None:
        super().__init__(manager, keepalive_timeout=limits.idle_timeout, **kwargs)
        self._gate = gate
        self._header_timeout = limits.header_timeout
        self._header_timer: asyncio.TimerHandle | None = None
        self._admitted = False
        self._last_payload: Any = None  # the body reader of the last request parsed
        self._last_data_at = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not self._gate.admit():
            self._force_close = True  # data_received ignores anything the client sends
            assert isinstance(transport, asyncio.WriteTransport)
            transport.write(REFUSED)
            transport.close()
            return
        self._admitted = True
        super().connection_made(transport)
        self._arm_header_timer()

    def connection_lost(self, exc: BaseException | None) -> None:
        if not self._admitted:
            return
        self._admitted = False
        self._gate.release()
        self._disarm_header_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._last_data_at = self._loop.time()
        parsed = self._request_count
        super().data_received(data)
        if self._request_count != parsed:  # a whole header block arrived
            self._disarm_header_timer()
            if self._messages:
                self._last_payload = self._messages[-1][1]
        elif data and self._waiter is not None and not self._waiter.done():
            self._arm_header_timer()  # the first bytes of a request on a kept-alive connection

    def eof_received(self) -> bool | None:  # type: ignore[override]  # asyncio's allows True
        # TCP cannot tell a half-close from a close: both are a FIN. A client that half-closes
        # does so as the last act of sending its request; one that gives up on an answer does so
        # later, after its own timeout. So a FIN within HALF_CLOSE_WINDOW of the last bytes
        # received, after a whole request, is a half-close: the answer is still written. A later
        # FIN cuts the request as aiohttp does, so a stalled stream's handler ends when its
        # client gives up.
        body_incomplete = self._last_payload is not None and not self._last_payload.is_eof()
        waiting = self._waiter is not None and not self._waiter.done() and not self._messages
        late = self._loop.time() - self._last_data_at > HALF_CLOSE_WINDOW
        if self._request_count == 0 or waiting or body_incomplete or late:
            return None  # asyncio closes the transport, as before
        self.close()  # answer what was asked, then close
        return True

    def force_close(self) -> None:
        self._disarm_header_timer()
        super().force_close()

    async def shutdown(self, timeout: float | None = 15.0) -> None:
        """Let a running handler finish for ``timeout`` seconds, then cancel it (see the module
        docstring for why aiohttp's own took twice as long)."""
        self._force_close = True
        if self._keepalive_handle is not None:
            self._keepalive_handle.cancel()
        if self._request_in_progress:
            self._handler_waiter = self._loop.create_future()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._handler_waiter), timeout)
            self._handler_waiter = None
        task = self._task_handler
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait([task], timeout=CANCEL_WAIT)
        self.force_close()

    def _arm_header_timer(self) -> None:
        if self._header_timer is None and self._header_timeout > 0:
            self._header_timer = self._loop.call_later(self._header_timeout, self._header_timed_out)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timed_out(self) -> None:
        self._header_timer = None
        if self.transport is not None and not self._force_close:
            self.transport.write(HEADER_TIMEOUT)
            self.force_close()


def connection_factory(
    runner: web.AppRunner, limits: Limits, loop: asyncio.AbstractEventLoop
) -> Callable[[], Connection]:
    """The protocol factory for ``loop.create_server``: one ``Connection`` per accepted socket,
    all counted by one ``Gate``."""
    manager = runner.server
    assert manager is not None, "call runner.setup() first"
    gate = Gate(limits.connection_limit(), loop.time)

    def make() -> Connection:
        return Connection(manager, limits=limits, gate=gate, loop=loop, access_log=None)

    return make
