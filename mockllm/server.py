"""Running the application on a socket: in the current event loop (:class:`Server`, used by the
CLI) or on a background thread with its own loop (:class:`MockLLMServer`, for tests and scripts,
so that a blocking SDK call in the caller's thread cannot deadlock the server).
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import TypeVar

from aiohttp import web

from .app import create_app
from .calls import CallLog
from .connections import Limits, Listener, listen
from .errors import MockLLMError
from .loader import default_scenarios, resolve
from .scenario import Scenario
from .selection import ScenarioSet
from .state import STATE, Options, ServerState
from .testing import ScenarioSource

T = TypeVar("T")

#: Sized for load tests that open a thousand streams at once.
BACKLOG = 2048


def bind(host: str, port: int, *, reuse_port: bool = False, listen: bool = True) -> socket.socket:
    """A listening socket; port 0 picks a free one. Bound before aiohttp starts so the real port
    is known (and printed) before the first request. ``reuse_port`` lets several worker
    processes each bind the same port (the kernel spreads connections among them)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        if listen:
            sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        raise MockLLMError(f"Cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    sock.setblocking(False)
    return sock


def resolve_scenarios(
    sources: ScenarioSource | Iterable[ScenarioSource] | None, *, base: Path | None = None
) -> tuple[Scenario, ...]:
    """Scenarios from any mix of Scenario objects, mappings, YAML text and paths; ``None`` gives
    the built-in default. A string is a path if it looks like one (:func:`~mockllm.loader.looks_like_path`:
    a path that does not exist is an error, never YAML text); relative paths are tried against
    ``base`` first. Raises :class:`~mockllm.errors.ScenarioError` with every problem."""
    if sources is None:
        return default_scenarios()
    if isinstance(sources, Scenario | dict | str | Path):
        sources = [sources]
    return resolve(sources, base=base)


class Server:
    """The application listening on ``host:port`` in the running event loop."""

    def __init__(
        self,
        scenarios: Sequence[Scenario],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        time_scale: float = 1.0,
        options: Options | None = None,
        grace: float = 1.0,
        reuse_port: bool = False,
        header_timeout: float = 10.0,
        idle_timeout: float = 75.0,
        max_connections: int | None = None,
    ) -> None:
        self.app = create_app(scenarios, time_scale=time_scale, options=options)
        self.host = host
        self.port = port
        self.grace = grace
        self.reuse_port = reuse_port
        self.limits = Limits(header_timeout, idle_timeout, max_connections)
        self._runner: web.AppRunner | None = None
        self._listener: Listener | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self) -> str:
        """Listen, and return the URL served."""
        sock = bind(self.host, self.port, reuse_port=self.reuse_port)
        self.port = sock.getsockname()[1]
        # handler_cancellation: a client that hangs up cancels its handler, so a stream waiting
        # in a stall or a forever-hang costs nothing once its client is gone.
        # shutdown_timeout: on stop, listening ends at once and running streams get this long
        # to finish before they are cut.
        self._runner = web.AppRunner(
            self.app, handler_cancellation=True, access_log=None, shutdown_timeout=self.grace
        )
        try:
            await self._runner.setup()
            # Accepting without aiohttp's SockSite or asyncio's create_server: connections.py's
            # Listener counts connections as it accepts them, and its Connection adds the header
            # timeout and the rest. SockSite also listened again with aiohttp's backlog of 128,
            # which made a burst of 1,000 connects drop SYNs that were retried a second later.
            self._listener = listen(sock, self._runner, self.limits, asyncio.get_running_loop())
        except BaseException:
            sock.close()
            raise
        return self.url

    async def stop(self) -> None:
        """Stop listening at once, let running handlers finish for ``grace`` seconds, then cancel
        what is left."""
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


class MockLLMServer:
    """A mock server on a background thread, for tests and scripts::

    with MockLLMServer("scenarios/slow.yaml") as server:
        client = openai.OpenAI(base_url=server.openai_base_url, api_key="unused")
    """

    def __init__(
        self,
        scenarios: ScenarioSource | Iterable[ScenarioSource] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        time_scale: float = 1.0,
        options: Options | None = None,
        grace: float = 1.0,
        header_timeout: float = 10.0,
        idle_timeout: float = 75.0,
        max_connections: int | None = None,
    ) -> None:
        self.initial = resolve_scenarios(scenarios)
        self.initial_time_scale = time_scale
        self.server = Server(
            self.initial,
            host=host,
            port=port,
            time_scale=time_scale,
            options=options,
            grace=grace,
            header_timeout=header_timeout,
            idle_timeout=idle_timeout,
            max_connections=max_connections,
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def openai_base_url(self) -> str:
        return f"{self.url}/v1"

    @property
    def state(self) -> ServerState:
        return self.server.app[STATE]

    @property
    def scenario(self) -> Scenario:
        return self.state.scenarios.default

    @property
    def scenarios(self) -> tuple[Scenario, ...]:
        return self.state.scenarios.scenarios

    @property
    def calls(self) -> CallLog:
        return self.state.calls

    @property
    def errors(self) -> list[BaseException]:
        """Exceptions raised inside the server (bugs), oldest first."""
        return self.state.errors

    @property
    def time_scale(self) -> float:
        return self.state.time_scale

    def use(self, *sources: ScenarioSource, base: Path | None = None) -> MockLLMServer:
        """Serve these scenarios from now on (the first is the default); counters start again."""
        scenarios = resolve_scenarios(sources, base=base)
        self._in_loop(lambda: self._set(scenarios=scenarios))
        return self

    def reset(
        self,
        scenarios: Sequence[Scenario] | None = None,
        *,
        time_scale: float | None = None,
        strict: bool | None = None,
    ) -> MockLLMServer:
        """Back to a clean slate: these scenarios (default: the ones it started with), sequence
        counters at zero, an empty call log, no recorded errors; ``strict`` (default: as the
        server was started) turns the default scenario off."""

        def apply() -> None:
            self._set(scenarios=scenarios or self.initial, time_scale=time_scale)
            state = self.state
            state.strict = state.options.strict if strict is None else strict
            state.clear_calls()
            state.errors.clear()

        self._in_loop(apply)
        return self

    def _set(self, *, scenarios: Sequence[Scenario], time_scale: float | None = None) -> None:
        state = self.state
        state.scenarios = ScenarioSet(scenarios)
        state.reset_chaos()
        state.time_scale = self.initial_time_scale if time_scale is None else time_scale

    def _in_loop(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the server's loop (between requests), or here if it is not running."""
        if self._loop is None:
            return fn()

        async def run() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout=10)

    def start(self) -> MockLLMServer:
        if self._thread is not None:
            raise RuntimeError("MockLLMServer.start() called twice; call stop() first")
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.server.start())
            except BaseException as exc:  # reported to the starting thread below
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(self.server.stop())
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="mockllm-server", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            self._thread = self._loop = None
            raise failure[0]
        return self

    def stop(self) -> None:
        if self._thread is None or self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._thread = self._loop = None

    def __enter__(self) -> MockLLMServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
