"""``mockllm record``: a proxy in front of a real API that writes each exchange as a scenario.

Every request (any method, any path but ``/healthz``) is forwarded to the upstream with its
headers, less the hop-by-hop ones (RFC 9110 §7.6.1) and ``Host``; the response goes back to the
client as it arrives, each read written on at once (no buffering of ours: the client sees the
upstream's own timing), and ends as the upstream's did (cleanly, FIN, or RST). Meanwhile each
read is kept with its time, and when the exchange is over :class:`Recorder` turns it into one
scenario file (:mod:`mockllm.recording`), written atomically so a reloading server never reads
half of one.

Every way a recorded exchange ends: the body's end (clean, FIN, RST: the file says which); the
client leaving first (``incomplete: true``, or no file with ``complete_only``); the recorder
stopping (SIGTERM: listening ends at once, exchanges in flight get ``grace`` seconds, then their
files are written as incomplete); the upstream unreachable (a 502 in the route's error shape,
no file).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import signal
import tempfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from aiohttp import web

from .formats import format_for, serving
from .guards import error_response
from .recording import Exchange, cut_short, scenario_of
from .redaction import Redactor, public_url
from .sink import ResponseSink
from .yamlwriter import render

log = logging.getLogger("mockllm")

#: Hop-by-hop headers (RFC 9110 §7.6.1) and those the client library sets itself.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)


def forwarded(headers: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """``headers`` less the hop-by-hop ones and those the ``Connection`` header names."""
    named = {
        token.strip().lower()
        for name, value in headers
        if name.lower() == "connection"
        for token in value.split(",")
    }
    return [(k, v) for k, v in headers if k.lower() not in HOP_BY_HOP and k.lower() not in named]


@dataclass
class Recorder:
    """Writes exchanges as scenario files in ``directory``: ``0001-openai-chat-hello.yaml``, …"""

    directory: Path
    exact: bool = False
    redactor: Redactor = field(default_factory=Redactor)
    keep_headers: tuple[str, ...] = ()
    complete_only: bool = False
    #: Called with each file written, on the proxy's saver thread (not the event loop).
    on_write: Callable[[Path], None] | None = None
    written: list[Path] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        numbers = [int(m.group(1)) for p in self.directory.iterdir() if (m := re.match(r"(\d+)-", p.name))]
        self._next = max(numbers, default=0) + 1

    def save(self, exchange: Exchange) -> Path | None:
        if serving(exchange.path) is None:  # GET /v1/models and the like: forwarded, not replayable
            log.info(
                "mockllm record: %s %s is no completion route; not recorded", exchange.method, exchange.path
            )
            return None
        if self.complete_only and cut_short(exchange):
            log.info(
                "mockllm record: %s %s: the client left first; not recorded", exchange.method, exchange.path
            )
            return None
        number = self._next
        self._next += 1
        data, notes = scenario_of(
            exchange, "pending", exact=self.exact, redactor=self.redactor, keep_headers=self.keep_headers
        )
        name = f"{number:04d}-{_slug(data)}"
        data["name"] = name
        path = self.directory / f"{name}.yaml"
        text = render(data, notes)
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=f".{name}.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
        self.written.append(path)
        log.info("mockllm record: %s %s -> %s", exchange.method, exchange.path, path)
        if self.on_write is not None:
            self.on_write(path)
        return path


def _slug(data: dict[str, object]) -> str:
    """A file name's words: the format and the start of the last user message."""
    match = data.get("match")
    words = "route"
    if isinstance(match, dict):
        words = str(match.get("format", "route"))
        last = match.get("last_user")
        if isinstance(last, dict) and "equals" in last:
            words += "-" + "-".join(re.findall(r"[a-z0-9]+", str(last["equals"]).lower()))[:40]
    return words.strip("-") or "route"


@dataclass
class Proxy:
    """Forwards requests to ``upstream`` and hands each exchange to ``recorder``."""

    upstream: str
    recorder: Recorder | None = None
    #: After writing a file, reload the server's scenarios from these paths (``serve --record``).
    reload: Callable[[], list[Path]] | None = None
    #: Set when the server stops: an exchange cancelled then was cut by the recorder, not its client.
    stopping: bool = False
    _session: aiohttp.ClientSession | None = None
    #: Files are written by one thread of their own, in the order the exchanges end: turning an
    #: exchange into a checked scenario takes milliseconds (the schema, the builder), and on the
    #: loop it held up every other stream's chunks (100 streams ending together: the last tokens
    #: ~1.8 s late, ``python -m bench.proxy``).
    _saver: ThreadPoolExecutor | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            # No timeout but the connect: a stream may stall as long as the upstream likes. The
            # body's bytes are passed on as they are: no decompression, no added headers.
            timeout = aiohttp.ClientTimeout(total=None, sock_connect=30)
            self._session = aiohttp.ClientSession(timeout=timeout, auto_decompress=False)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
        if self._saver is not None:  # the files of exchanges that ended are written first
            await asyncio.get_running_loop().run_in_executor(None, self._saver.shutdown)

    async def _record(self, request: web.Request, exchange: Exchange) -> None:
        """Write ``exchange``'s file (on the saver thread) and, for ``serve --record``, reload."""
        if not exchange.status or self.recorder is None:
            return
        if self._saver is None:
            self._saver = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mockllm-record")
        saving = asyncio.get_running_loop().run_in_executor(self._saver, self._save, exchange)
        # Shielded: a handler cancelled meanwhile (the client left, the recorder stops) would
        # cancel a save still queued; :meth:`close` waits for every one.
        if await asyncio.shield(saving) is not None and self.reload is not None:
            try:
                _reload(request, self.reload())
            except Exception:  # a bug: the client has its answer; say so and go on proxying
                log.exception("mockllm record: the scenarios could not be reloaded")

    def _save(self, exchange: Exchange) -> Path | None:
        """On the saver thread: the file, or None (a failure is logged here, where it happens,
        whether or not a handler still waits for it)."""
        assert self.recorder is not None
        try:
            return self.recorder.save(exchange)
        except Exception:  # a bug: the client has its answer; say so and go on proxying
            log.exception("mockllm record: %s %s could not be written", exchange.method, exchange.path)
            return None

    async def forward(self, request: web.Request) -> web.StreamResponse:
        """The upstream's answer to ``request``, streamed back as it arrives, and recorded."""
        loop = asyncio.get_running_loop()
        body = await request.read()
        exchange = Exchange(
            upstream=self.upstream,
            method=request.method,
            path=request.path,
            when=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            request_body=body,
        )
        sent = loop.time()
        try:
            upstream = await self.session.request(
                request.method,
                self.upstream.rstrip("/") + request.path_qs,
                headers=forwarded(list(request.headers.items())),
                data=body if body else None,
                allow_redirects=False,
                skip_auto_headers=("Accept-Encoding", "User-Agent", "Content-Type"),
            )
        except (aiohttp.ClientError, OSError) as exc:
            message = f"mockllm record: the upstream {public_url(self.upstream)} did not answer: {exc}"
            return error_response(format_for(request.path), 502, message, code="upstream_unreachable")
        response: web.StreamResponse | None = None
        recorded = False
        try:
            exchange.status = upstream.status
            exchange.response_headers = list(upstream.headers.items())
            exchange.first_byte = loop.time() - sent
            response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
            for name, value in forwarded(exchange.response_headers):
                response.headers.add(name, value)
            length = upstream.headers.get("Content-Length")
            if (
                length is not None
                and length.isdigit()
                and "chunked" not in upstream.headers.get("Transfer-Encoding", "")
            ):
                response.content_length = int(length)
            await response.prepare(request)
            started = loop.time()
            decompress = _decompressor(upstream.headers.get("Content-Encoding", ""))
            exchange.ending = "eof"
            try:
                async for data in upstream.content.iter_any():
                    exchange.keep(loop.time() - started, decompress(data))
                    try:
                        await response.write(data)
                    except (ConnectionError, aiohttp.ClientConnectionResetError):
                        exchange.ending = "abandoned"  # the client left
                        break
            except aiohttp.ClientPayloadError as exc:  # the upstream's body ended early
                exchange.ending = "reset" if _reset(exc) else "fin"
            except (ConnectionError, aiohttp.ClientOSError):
                exchange.ending = "reset"
            if self.reload is not None:  # serve --record: the answer ends once the file is read
                recorded = True  # back in, so the same request sent right after it is replayed
                await self._record(request, exchange)
            await _end(request, response, exchange.ending)
        except asyncio.CancelledError:  # the client left, or the recorder is stopping
            exchange.ending = "stopped" if self.stopping else "abandoned"
            raise
        finally:
            upstream.close()
            if not recorded:
                await self._record(request, exchange)
        return response


def _reload(request: web.Request, paths: list[Path]) -> None:
    """The server's scenarios, read again with the file just written."""
    from .loader import load_scenarios
    from .selection import ScenarioSet
    from .state import STATE

    scenarios = ScenarioSet(load_scenarios(paths))
    request.app[STATE].scenarios = scenarios
    log.info("mockllm: reloaded %d scenario(s) with the new recording", len(scenarios.names))


def _reset(exc: BaseException) -> bool:
    """Whether the upstream's connection ended with RST (else FIN) under this client error."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ConnectionResetError) or "reset" in str(cause).lower():
            return True
        cause = cause.__cause__ or cause.__context__
    return False


async def _end(request: web.Request, response: web.StreamResponse, ending: str) -> None:
    """End the client's response as the upstream's ended."""
    if ending == "abandoned":
        return
    with contextlib.suppress(ConnectionError, aiohttp.ClientConnectionResetError):
        await ResponseSink(request, response).close("eof" if ending == "eof" else ending)  # type: ignore[arg-type]


def _decompressor(encoding: str) -> Callable[[bytes], bytes]:
    """What the recording keeps of a compressed body: the bytes it stands for (read by read)."""
    encoding = encoding.strip().lower()
    if encoding in ("gzip", "x-gzip", "deflate"):
        inflater = zlib.decompressobj(zlib.MAX_WBITS | (16 if "gzip" in encoding else 0))
        return lambda data: inflater.decompress(data)
    return lambda data: data


# -- the service ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Upstream:
    """Where to forward and how to write what passes (``record``, ``serve --upstream``)."""

    url: str
    #: The directory the exchanges are written to; None: forward only.
    out: Path | None = None
    exact: bool = False
    redact: tuple[str, ...] = ()
    keep_headers: tuple[str, ...] = ()
    complete_only: bool = False

    def proxy(self, reload: Sequence[Path] | None = None) -> Proxy:
        """The proxy; with ``reload``, each file written reloads the server's scenarios from
        those paths and :attr:`out` (``serve --record``: the next identical request replays)."""
        recorder = None
        if self.out is not None:
            recorder = Recorder(
                self.out,
                exact=self.exact,
                redactor=Redactor(self.redact),
                keep_headers=self.keep_headers,
                complete_only=self.complete_only,
            )
        paths = None if reload is None else list(reload)
        return Proxy(self.url, recorder, reload=None if paths is None else lambda: self.sources(paths))

    def sources(self, scenarios: Sequence[Path]) -> list[Path]:
        """``scenarios`` and :attr:`out`, once, leaving out a recordings directory with none yet."""
        paths = list(scenarios)
        if self.out is not None and self.out not in paths:
            paths.append(self.out)
        return [p for p in paths if p != self.out or any(_scenario_files(p))]


def _scenario_files(directory: Path) -> Iterator[Path]:
    from .loader import SCENARIO_SUFFIXES

    if directory.is_dir():
        yield from (p for p in directory.iterdir() if p.suffix in SCENARIO_SUFFIXES)


@dataclass(frozen=True)
class RecordConfig:
    upstream: Upstream
    host: str = "127.0.0.1"
    port: int = 8000
    url_file: Path | None = None
    grace: float = 5.0


def record_app(proxy: Proxy) -> web.Application:
    app = web.Application(client_max_size=64 * 1024 * 1024)

    async def healthz(request: web.Request) -> web.Response:
        out = None if proxy.recorder is None else str(proxy.recorder.directory)
        return web.json_response({"status": "ok", "recording": out, "pid": os.getpid()})

    async def forward(request: web.Request) -> web.StreamResponse:
        return await proxy.forward(request)

    app.router.add_get("/healthz", healthz)
    app.router.add_route("*", "/{tail:.*}", forward)
    return app


async def record(config: RecordConfig, *, ready: Callable[[str], None] | None = None) -> None:
    """Proxy and record until SIGINT or SIGTERM; then stop listening, give exchanges in flight
    ``grace`` seconds, and write their files."""
    from .server import bind
    from .service import url_of, write_url_file

    proxy = config.upstream.proxy()
    sock = bind(config.host, config.port)
    runner = web.AppRunner(
        record_app(proxy), handler_cancellation=True, access_log=None, shutdown_timeout=config.grace
    )
    await runner.setup()
    site = web.SockSite(runner, sock)
    await site.start()
    url = url_of(config.host, sock.getsockname()[1])
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if config.url_file is not None:
        write_url_file(config.url_file, url)
    if ready is not None:
        ready(url)
    try:
        await stop.wait()
    finally:
        proxy.stopping = True
        await runner.cleanup()
        await proxy.close()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
