"""mockllm as a service: serve until told to stop, wrap a command (``exec``), wait for readiness,
reload scenario files (several processes: ``workers.py``).

Every way a served process ends: SIGINT or SIGTERM stops listening at once, lets running streams
finish for up to ``grace`` seconds, cuts what is left, and exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .calls import MAX_CALLS
from .connections import raise_open_file_limit
from .errors import MockLLMError, ScenarioError
from .loader import SCENARIO_SUFFIXES, load_scenarios
from .record import Upstream
from .redaction import public_url
from .scenario import Scenario
from .selection import ScenarioSet
from .server import MockLLMServer, Server, resolve_scenarios
from .state import STATE, Options

log = logging.getLogger("mockllm")

#: The API keys a wrapped command gets: the server's ``--api-key``, else a dummy. Always replaced,
#: so a real key in the environment is never sent to the mock (nor left empty, as CI leaves a
#: missing secret, which the SDKs refuse as "missing credentials").
#: google-genai reads GOOGLE_API_KEY first (and warns when GEMINI_API_KEY is set too: exec drops it).
KEYS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "AZURE_OPENAI_API_KEY", "GOOGLE_API_KEY")
#: The base URLs ``mockllm exec`` exports and the banner shows: (variable the SDK reads, the API,
#: what follows the server's URL).
BASE_URLS = (
    ("OPENAI_BASE_URL", "OpenAI", "/v1"),
    ("ANTHROPIC_BASE_URL", "Anthropic", ""),
    ("OLLAMA_HOST", "Ollama", ""),
    ("AZURE_OPENAI_ENDPOINT", "Azure OpenAI", ""),
    ("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", "Bedrock", ""),  # boto3's endpoint_url; not its credentials
    ("GOOGLE_GEMINI_BASE_URL", "Gemini", ""),  # google-genai's (_base_url.py); it adds /v1beta or /v1
)
DUMMY_KEY = "mockllm-dummy-key"


@dataclass(frozen=True)
class ServeConfig:
    scenarios: tuple[Path, ...] = ()
    host: str = "127.0.0.1"
    port: int = 8000
    time_scale: float = 1.0
    url_file: Path | None = None
    reload: bool = False
    grace: float = 5.0
    workers: int = 1
    api_key: str | None = field(default=None, repr=False)
    control: bool = True
    control_token: str | None = field(default=None, repr=False)
    max_body: int = 16 * 1024 * 1024
    cors: tuple[str, ...] = ()
    max_calls: int = MAX_CALLS
    redact_headers: tuple[str, ...] = ()
    strict: bool = False
    header_timeout: float = 10.0
    idle_timeout: float = 75.0
    max_connections: int | None = None  # None: the open-file limit less connections.FD_RESERVE
    #: ``--upstream`` (and ``--record``): what no scenario answers is forwarded (and recorded).
    upstream: Upstream | None = None

    def options(self) -> Options:
        shown = {
            k: (str(v) if isinstance(v, Path) else v)
            for k, v in asdict(self).items()
            if k not in ("api_key", "control_token", "upstream")
        }
        if self.upstream is not None:
            shown["upstream"] = public_url(self.upstream.url)
        shown["scenarios"] = [str(p) for p in self.scenarios]
        shown["scenario_paths"] = shown.pop("scenarios")
        return Options(
            api_key=self.api_key,
            control=self.control,
            control_token=self.control_token,
            max_body=self.max_body,
            cors=self.cors,
            config=shown,
            max_calls=self.max_calls,
            redact_headers=self.redact_headers,
            strict=self.strict,
            upstream=None if self.upstream is None else self.upstream.proxy(reload=self.scenarios),
        )

    def load(self) -> tuple[Scenario, ...]:
        paths = list(self.scenarios) if self.upstream is None else self.upstream.sources(self.scenarios)
        return resolve_scenarios(paths or None)

    def server_arguments(self) -> dict[str, Any]:
        """What ``Server`` and ``MockLLMServer`` take, scenarios loaded."""
        return {
            "host": self.host,
            "port": self.port,
            "time_scale": self.time_scale,
            "options": self.options(),
            "grace": self.grace,
            "header_timeout": self.header_timeout,
            "idle_timeout": self.idle_timeout,
            "max_connections": self.max_connections,
        }


def url_of(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    return f"http://[{shown}]:{port}" if ":" in shown else f"http://{shown}:{port}"


def write_url_file(path: Path, url: str) -> None:
    """Write atomically: a reader polling the file never sees it half written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as handle:
        handle.write(url + "\n")
    os.replace(tmp, path)


# -- serve ----------------------------------------------------------------------------------------


async def serve(
    config: ServeConfig,
    *,
    ready: Callable[[str], None] | None = None,
    reuse_port: bool = False,
    parent_fd: int | None = None,
) -> None:
    """Serve until SIGINT or SIGTERM (or, given ``parent_fd``, the read end of a pipe, until
    that reads EOF: the parent process is gone), then shut down gracefully."""
    raise_open_file_limit()
    server = Server(config.load(), reuse_port=reuse_port, **config.server_arguments())
    _tune_gc()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if parent_fd is not None:

        def orphaned() -> None:
            log.warning("mockllm: the parent process is gone; stopping this worker")
            loop.remove_reader(parent_fd)
            stop.set()

        loop.add_reader(parent_fd, orphaned)
    url = await server.start()
    watcher = asyncio.create_task(watch(server, config.scenarios)) if config.reload else None
    if config.url_file is not None and not reuse_port:
        write_url_file(config.url_file, url)
    if ready is not None:
        ready(url)
    try:
        await stop.wait()
    finally:
        log.info("mockllm: stopping; running streams get up to %gs to finish", config.grace)
        if watcher is not None:
            watcher.cancel()
        await server.stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        if parent_fd is not None:
            loop.remove_reader(parent_fd)


def _tune_gc() -> None:
    """This process is mockllm's own, so tune the garbage collector for it (never in a process
    that only imports mockllm, such as a test run). What startup made is frozen out of the
    collector's sight (it lives as long as the process), and young objects are collected every
    50,000 allocations instead of 700: with a thousand live connections, each collection walks
    their objects, and a burst of 1,000 requests spent ~40 of its ~200 ms of CPU in them."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def _snapshot(paths: Sequence[Path]) -> dict[Path, float]:
    """The scenario files under ``paths`` and their modification times."""
    files: dict[Path, float] = {}
    for path in paths:
        candidates = sorted(path.iterdir()) if path.is_dir() else [path]
        for file in candidates:
            if file.suffix in SCENARIO_SUFFIXES or not path.is_dir():
                with contextlib.suppress(OSError):
                    files[file] = file.stat().st_mtime_ns
    return files


async def watch(server: Server, paths: Sequence[Path], interval: float = 0.3) -> None:
    """Reload the scenarios when their files change; keep the old set if the new one is invalid."""
    seen = _snapshot(paths)
    while True:
        await asyncio.sleep(interval)
        now = _snapshot(paths)
        if now == seen:
            continue
        seen = now
        try:
            replacement = ScenarioSet(load_scenarios(paths))
        except ScenarioError as exc:
            log.warning("mockllm: scenario files changed but are invalid; keeping the old ones:\n%s", exc)
            continue
        except MockLLMError as exc:
            log.warning(
                "mockllm: scenario files changed but cannot be loaded (%s); keeping the old ones", exc
            )
            continue
        server.app[STATE].scenarios = replacement
        log.info("mockllm: reloaded %d scenario(s): %s", len(replacement.names), ", ".join(replacement.names))


# -- readiness -------------------------------------------------------------------------------------


def health(url: str) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=1) as response:
            if response.status == 200:
                body: dict[str, Any] = json.loads(response.read())
                return body
    except (OSError, ValueError):
        return None
    return None


def wait_until_ready(url: str | None, url_file: Path | None, timeout: float) -> str:
    """Poll until ``/healthz`` answers 200 (reading the URL from ``url_file`` once it exists)."""
    deadline = time.monotonic() + timeout
    while True:
        target = url
        if target is None and url_file is not None and url_file.exists():
            target = url_file.read_text().strip() or None
        if target is not None and health(target.rstrip("/")) is not None:
            return target
        if time.monotonic() >= deadline:
            where = target or (f"the URL in {url_file}" if url_file else "the server")
            raise MockLLMError(f"{where} was not ready after {timeout:g}s")
        time.sleep(0.05)


# -- exec ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VerdictConfig:
    """``exec --verdict``: the checks to run over the call log once the command exits, and the
    report files to write (``.xml``: JUnit, else JSON)."""

    checks: tuple[str, ...]
    abort_within: float = 30.0
    reports: tuple[Path, ...] = ()


#: Seconds ``exec --verdict`` waits for the server to see the command's connections close.
SETTLE = 2.0


def judge(server: MockLLMServer, config: VerdictConfig) -> bool:
    """Run the verdict over ``server``'s calls: stories and a summary on stderr, reports written.
    True if every check passed."""
    from .verdict import verdict

    deadline = time.monotonic() + SETTLE
    calls = server.state.all_calls()
    for call in calls:
        with contextlib.suppress(TimeoutError):
            call.wait(max(0.0, deadline - time.monotonic()))
    result = verdict(calls, config.checks, config.abort_within)
    for finding in result.findings:
        where = f"{finding.test}: {finding.scenario}" if finding.test is not None else finding.scenario
        print(f"mockllm verdict: {finding.check} ({where}): {finding.story}", file=sys.stderr)
    print(result.summary(), file=sys.stderr)
    for report in config.reports:
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(
            result.to_junit() if report.suffix == ".xml" else result.to_json(), encoding="utf-8"
        )
    return result.passed


def exec_command(config: ServeConfig, argv: Sequence[str], verdict: VerdictConfig | None = None) -> int:
    """Start a server on a free port, run ``argv`` with the URLs in its environment, stop the
    server, and return the command's exit status (128 + N if a signal N ended it). With
    ``verdict``, a command that succeeded still fails (1) if a check of the verdict fails."""
    server = MockLLMServer(config.load(), **config.server_arguments())
    server.start()
    try:
        url = server.url
        if config.url_file is not None:
            write_url_file(config.url_file, url)
        env = {**os.environ, "MOCKLLM_URL": url}
        env.update((name, url + suffix) for name, _, suffix in BASE_URLS)
        env.setdefault("OPENAI_API_VERSION", "2024-10-21")  # AzureOpenAI() needs one
        env.pop("GEMINI_API_KEY", None)
        for key in KEYS:
            env[key] = config.api_key or DUMMY_KEY
        try:
            child = subprocess.Popen(list(argv), env=env)
        except OSError as exc:
            raise MockLLMError(f"cannot run {argv[0]!r}: {exc.strerror or exc}") from exc

        def forward(signum: int, frame: object) -> None:
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signum)

        previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            code = child.wait()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        passed = judge(server, verdict) if verdict is not None else True
    finally:
        server.stop()
    if code:
        return 128 - code if code < 0 else code
    return 0 if passed else 1
