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
- **Errors in the API's shape.** A request aiohttp's parser refuses (a bad request line or
  header, a body in a Content-Encoding it cannot decode) never reaches a handler; aiohttp answers
  it in ``text/plain``. ``handle_error`` answers in the JSON error shape of the API that owns the
  request's path, read from the request line of the bytes received (``formats.format_for``; a
  line too bad to read gets OpenAI's shape).
- **Shutdown in one grace period.** aiohttp's ``shutdown(timeout)`` waits ``timeout`` for a
  running handler, then cancels only the request's *body reader* and waits ``timeout`` again; a
  handler waiting on anything else (a stall) does not notice, so stopping took twice
  ``--grace``. Here the handler task is cancelled once the grace period is over.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import re
import resource
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler, _ErrInfo
from aiohttp.web_request import BaseRequest

from .guards import api_error

log = logging.getLogger("mockllm")

#: File descriptors kept free below the open-file limit for everything that is not a client
#: connection (the listening socket, the event loop, logs, scenario files being reloaded).
FD_RESERVE = 128
#: At most one "refusing connections" warning this often (seconds).
REFUSAL_LOG_INTERVAL = 10.0
#: A FIN this soon after the last bytes of a request is a half-close, not a client giving up
#: (seconds; see Connection.eof_received).
HALF_CLOSE_WINDOW = 0.25
#: Connections accepted per wake-up of the listening socket before other callbacks run.
ACCEPT_BURST = 128
#: How long accepting pauses when the process has run out of descriptors (seconds).
ACCEPT_PAUSE = 0.1
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
#: How much of a request's first line is kept to name its API if the parser refuses it.
REQUEST_LINE_KEPT = 2048
_TARGET = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+ +(/[^ ?#\r\n]*)")
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
    """Counts open connections (from their accept), refuses those past ``limit``, and logs each
    kind of trouble once per burst (at most every ``REFUSAL_LOG_INTERVAL`` seconds)."""

    def __init__(self, limit: int, time: Callable[[], float]) -> None:
        self.limit = limit
        self.open = 0
        self.refused = 0
        self._time = time
        self._logged_at: dict[str, float] = {}

    def admit(self) -> bool:
        if self.open < self.limit:
            self.open += 1
            return True
        self.refused += 1
        self.warn(
            "refused",
            "mockllm: %d connections open, the --max-connections limit: refusing new ones with "
            "503 (%d so far; this warning repeats at most every %gs)",
            self.open,
            self.refused,
            REFUSAL_LOG_INTERVAL,
        )
        return False

    def release(self) -> None:
        self.open -= 1

    def warn(self, kind: str, message: str, *args: object) -> None:
        now = self._time()
        last = self._logged_at.get(kind)
        if last is None or now - last >= REFUSAL_LOG_INTERVAL:
            self._logged_at[kind] = now
            log.warning(message, *args)


class Listener:
    """The accept loop, ours rather than ``loop.create_server``'s. asyncio's (Python 3.11)
    accepts a whole backlog of connections (2,048 here) in one go before any protocol runs, so a
    burst beyond the open-file limit ran out of descriptors whatever the limit said; and after
    EMFILE it goes on calling ``accept()``, logging a traceback for each (the ~50,000 log lines
    of issue 15). Here each connection is counted as it is accepted: past the limit it gets
    ``REFUSED`` and is closed there and then, and on EMFILE (other descriptors ran out) accepting
    pauses for ``ACCEPT_PAUSE`` with one warning."""

    def __init__(
        self,
        sock: socket.socket,
        factory: Callable[[], asyncio.Protocol],
        gate: Gate,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self._sock = sock
        self._factory = factory
        self._gate = gate
        self._loop = loop
        self._tasks: set[asyncio.Task[Any]] = set()
        self._paused: asyncio.TimerHandle | None = None
        self._closed = False

    def start(self) -> None:
        """Accept on ``sock``, which is bound, listening and non-blocking (``server.bind``)."""
        self._loop.add_reader(self._sock.fileno(), self._accept)

    def close(self) -> None:
        """Stop accepting; the connections already open are the runner's to shut down (those
        still being set up are cancelled, so none starts after)."""
        if self._closed:
            return
        self._closed = True
        for task in self._tasks:
            task.cancel()
        if self._paused is not None:
            self._paused.cancel()
        else:
            self._loop.remove_reader(self._sock.fileno())
        self._sock.close()

    def _accept(self) -> None:
        for _ in range(ACCEPT_BURST):  # then let the loop run everything else for a while
            try:
                conn, _ = self._sock.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return
            except OSError as exc:
                if exc.errno not in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    raise
                self._gate.warn(
                    "accept",
                    "mockllm: cannot accept connections (%s) with %d open; pausing for %gs "
                    "(lower --max-connections, or raise the open-file limit)",
                    exc.strerror,
                    self._gate.open,
                    ACCEPT_PAUSE,
                )
                self._loop.remove_reader(self._sock.fileno())
                self._paused = self._loop.call_later(ACCEPT_PAUSE, self._resume)
                return
            if not self._gate.admit():
                with contextlib.suppress(OSError):
                    conn.setblocking(False)
                    conn.send(REFUSED)
                conn.close()
                continue
            task = self._loop.create_task(self._open(conn))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _open(self, conn: socket.socket) -> None:
        try:
            await self._loop.connect_accepted_socket(self._factory, conn)
        except OSError:  # the transport closed at once: its protocol's connection_lost released it
            conn.close()

    def _resume(self) -> None:
        self._paused = None
        if not self._closed:
            self._loop.add_reader(self._sock.fileno(), self._accept)


class Connection(RequestHandler):
    """aiohttp's per-connection protocol with the limits above (see the module docstring)."""

    __slots__ = (
        "_gate",
        "_header_timeout",
        "_header_timer",
        "_last_data_at",
        "_last_payload",
        "_refused_line",
        "_request_line",
    )

    def __init__(self, manager: web.Server, *, limits: Limits, gate: Gate, **kwargs: Any) -> None:
        super().__init__(manager, keepalive_timeout=limits.idle_timeout, **kwargs)
        self._gate = gate
        self._header_timeout = limits.header_timeout
        self._header_timer: asyncio.TimerHandle | None = None
        self._last_payload: Any = None  # the body reader of the last request parsed
        self._last_data_at = 0.0
        self._request_line = b""  # the start of the request being received
        self._refused_line = b""  # ... of the last one the parser refused (for handle_error)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._arm_header_timer()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._gate.release()  # admitted at its accept (Listener)
        self._disarm_header_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._last_data_at = self._loop.time()
        if len(self._request_line) < REQUEST_LINE_KEPT:
            self._request_line += data[: REQUEST_LINE_KEPT - len(self._request_line)]
        parsed = self._request_count
        super().data_received(data)
        if self._request_count != parsed:  # a whole header block arrived, or a refusal
            if self._messages and isinstance(self._messages[-1][0], _ErrInfo):
                self._refused_line = self._request_line
            self._request_line = b""
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

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """aiohttp's answer to a request it could not parse (logged, and the connection closed,
        as aiohttp does), in the JSON shape of the API its path belongs to."""
        super().handle_error(request, status, exc, message)  # logs; raises if bytes went out
        target = _TARGET.match(self._refused_line.lstrip(b"\r\n"))
        path = target.group(1).decode("latin-1") if target else "/"
        text = " ".join((message or "").split()) or "the request could not be read"
        response = api_error(path, status, f"Bad request: {text}")
        response.force_close()
        return response

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


def listen(
    sock: socket.socket, runner: web.AppRunner, limits: Limits, loop: asyncio.AbstractEventLoop
) -> Listener:
    """Serve ``runner``'s application on the bound socket ``sock``: one ``Connection`` per
    accepted socket, all counted by one ``Gate``."""
    manager = runner.server
    assert manager is not None, "call runner.setup() first"
    gate = Gate(limits.connection_limit(), loop.time)

    def make() -> Connection:
        return Connection(manager, limits=limits, gate=gate, loop=loop, access_log=None)

    listener = Listener(sock, make, gate, loop)
    listener.start()
    return listener
