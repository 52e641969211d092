"""What a running server knows and how it was set up, kept on the application under :data:`STATE`.

Every other server module reads it from here, so the routes (:mod:`mockllm.app`), the guards
(:mod:`mockllm.guards`), the replies (:mod:`mockllm.replies`) and the control API import this
module and not each other.
"""

from __future__ import annotations

import collections
import itertools
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import web

from .calls import MAX_CALLS, SECRET_HEADERS, Call, CallLog
from .clock import Clock, LoopClock
from .metrics import Metrics
from .quotas import Quotas
from .selection import ScenarioSet

#: The request header that scopes sequence counters and the call log to one test of many sharing
#: a server (``test=`` in the query of ``GET /v1/stream``, ``/_mockllm/calls`` and ``/reset``).
TEST_HEADER = "X-Mockllm-Test"
#: Test scopes a server keeps; past it the oldest scope's calls and counters are dropped.
MAX_SCOPES = 1024

#: Large enough for long conversations; beyond it a request gets a 413 in the API's shape.
MAX_BODY = 16 * 1024 * 1024


class Forwarder(Protocol):
    """Where ``serve --upstream`` sends what no scenario answers (:class:`mockllm.record.Proxy`)."""

    #: Set as the server shuts down: an exchange cut then was cut by the server, not its client.
    stopping: bool

    async def forward(self, request: web.Request) -> web.StreamResponse: ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class Options:
    """How a server is set up, beyond its scenarios."""

    #: Clients must present this key (``Authorization: Bearer`` or ``x-api-key``), else 401.
    api_key: str | None = None
    #: Serve the control API under ``/_mockllm/``.
    control: bool = True
    #: The control API requires ``Authorization: Bearer <token>``.
    control_token: str | None = None
    max_body: int = MAX_BODY
    #: Origins allowed to call the LLM endpoints from a browser (``*`` for any); empty: no CORS.
    cors: tuple[str, ...] = ()
    #: What ``GET /_mockllm/config`` shows besides the live values (no secrets).
    config: dict[str, Any] = field(default_factory=dict)
    #: The call log keeps this many calls; older ones are dropped and counted.
    max_calls: int = MAX_CALLS
    #: Headers redacted wherever calls are served or logged, besides :data:`SECRET_HEADERS`.
    redact_headers: tuple[str, ...] = ()
    #: ``--strict``: no default; a request that neither names nor matches a scenario is a 404.
    strict: bool = False
    #: ``serve --upstream``: a completion request no scenario matches is forwarded (and recorded).
    upstream: Forwarder | None = None

    @property
    def secret_headers(self) -> frozenset[str]:
        return SECRET_HEADERS | {name.lower() for name in self.redact_headers}


@dataclass
class ServerState:
    """Everything a running server knows, kept on the application under :data:`STATE`."""

    scenarios: ScenarioSet
    clock: Clock = field(default_factory=LoopClock)
    time_scale: float = 1.0
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    calls: CallLog = field(default_factory=CallLog)
    #: Exceptions raised by handlers (bugs), oldest first, with their tracebacks.
    errors: list[BaseException] = field(default_factory=list)
    #: Clock time the call log's JSON times are relative to.
    epoch: float = 0.0
    options: Options = field(default_factory=Options)
    metrics: Metrics = field(default_factory=Metrics)
    quotas: Quotas = field(default_factory=Quotas)
    #: Chaos draws so far, by (test scope, scenario name).
    chaos_draws: collections.Counter[tuple[str | None, str]] = field(default_factory=collections.Counter)
    #: Whether selection has no default (``Options.strict``; the pytest fixture sets it per test).
    strict: bool = False
    #: The call logs of requests that carried :data:`TEST_HEADER`, by test id, oldest first.
    scoped: dict[str, CallLog] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.strict = self.strict or self.options.strict
        if self.calls.limit != self.options.max_calls:
            self.calls = CallLog(limit=self.options.max_calls)

    def clear_calls(self, test: str | None = None) -> int:
        """Start a new, empty call log (a test's old calls may still be filled in by their
        streams: they stay in the old one); how many calls the old one held. ``test``: only
        that test's log; ``None``: the unscoped log and every test's."""
        if test is not None:
            old = self.scoped.pop(test, None)
            return len(old) if old is not None else 0
        cleared = len(self.calls)
        self.calls = CallLog(limit=self.options.max_calls)
        self.scoped.clear()
        return cleared

    def reset_chaos(self, test: str | None = None) -> None:
        """Chaos draws from 0 again: ``test``'s only, or (``None``) all of them."""
        if test is None:
            self.chaos_draws.clear()
        else:
            for key in [key for key in self.chaos_draws if key[0] == test]:
                del self.chaos_draws[key]

    def all_calls(self) -> list[Call]:
        """The unscoped calls and every test scope's, oldest first."""
        calls = [*self.calls, *(call for log in self.scoped.values() for call in log)]
        return sorted(calls, key=lambda call: call.started)

    def calls_for(self, test: str | None, *, create: bool = False) -> CallLog:
        """The call log of ``test`` (``None``: the unscoped one)."""
        if test is None:
            return self.calls
        log = self.scoped.get(test)
        if log is None:
            log = CallLog(limit=self.options.max_calls)
            if create:
                if len(self.scoped) >= MAX_SCOPES:
                    oldest = next(iter(self.scoped))
                    del self.scoped[oldest]
                    self.scenarios.reset_counters(oldest)
                self.scoped[test] = log
        return log


STATE = web.AppKey("mockllm_state", ServerState)
CALL = web.RequestKey("mockllm_call", Call)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)
