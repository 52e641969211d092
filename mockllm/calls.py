"""The call log: what clients sent, what they got, and what they did about it.

Reads like ``unittest.mock``: ``calls``, ``calls.call_count``, ``calls.last``, ``calls[0].json``.
The server appends a :class:`Call` when a request arrives and fills it in as the response goes out,
so a call is complete by the time its last byte reaches the client (``Call.wait()`` waits for the
server to notice a client that hung up).

The assertion helpers check what the point of a fault is, the client's reaction, and fail with the
story: ``call 2 retried after 0.02 s but call 1 said Retry-After: 1``.

Light on purpose: the pytest plugin imports this module into every test run.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from json import loads
from typing import Any, overload

#: Headers that carry credentials: shown redacted wherever a call leaves the process (the control
#: API, logs, files), as their scheme and last four characters (``Bearer …abcd``).
SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "x-api-key", "api-key", "x-goog-api-key", "cookie", "set-cookie"}
)
#: Calls a log keeps by default; older ones are dropped (and counted) past it.
MAX_CALLS = 10_000

#: Outcomes of calls that got no stream: the scenario answered with ``status``, the request was bad.
FAULT_STATUS = "fault:status"
REJECTED = "rejected"


@dataclass(slots=True)
class Outcome:
    """How a stream went, filled in by the write loop as it runs (so it is complete even if the
    task is cancelled). Times are the server clock's monotonic seconds."""

    outcome: str = "started"
    tokens_sent: int = 0
    bytes_sent: int = 0
    first_byte: float | None = None
    last_byte: float | None = None
    #: The most any write went out after its deadline: the loop could not keep up.
    max_lateness: float = 0.0
    #: Seconds the stream's writes waited for the client to read (a slow or stuck reader), not
    #: counting a wait still under way (see :attr:`blocked_since`).
    backpressure_wait: float = 0.0
    #: When the write under way began, while one waits for the client to read.
    blocked_since: float | None = None


#: One condition for every call to wait on: an Event per call would keep a lock and a condition
#: alive for every open stream (a thousand held streams: 1 MB).
_finished = threading.Condition()


@dataclass(kw_only=True, slots=True)
class Call(Outcome):
    """One request and its response. The write loop fills in its :class:`Outcome` fields
    directly, so the entry is current the moment each byte is written."""

    method: str
    path: str
    headers: dict[str, str]
    started: float
    #: The request body as read (after any Content-Encoding), for the requests that were JSON;
    #: :attr:`json` is its value.
    body: bytes | None = None
    scenario: str | None = None
    #: Why the scenario answered: ``header``, ``match``, ``model`` or ``default``.
    reason: str | None = None
    #: For ``match``: which scenario's conditions held (``ask-weather: last_user, tool_result held``).
    why: str | None = None
    #: The request as every format reads it (a :class:`~mockllm.conversation.Conversation`).
    conversation: Any = None
    #: The ``X-Mockllm-Test`` id the request carried (its call log and sequence counters).
    test: str | None = None
    #: The wire format served, e.g. ``openai-chat``.
    format: str | None = None
    stream: bool = False
    status: int | None = None
    response_headers: dict[str, str] = field(default_factory=dict)
    ended: float | None = None
    #: A scenario's chaos draw: ``{"n": draw, "fault": index of the option drawn, or None}``.
    chaos: dict[str, Any] | None = None
    _json: Any = field(default=None, init=False, repr=False, compare=False)

    @property
    def json(self) -> Any:
        """The request body's JSON value (None if it was not JSON), parsed when first asked for:
        the log keeps the bytes aiohttp read anyway, not a second copy of them as objects (for
        every open stream and every call the log holds; ``python -m bench.memory``)."""
        if self._json is None:
            self._json = self._parsed()
        return self._json

    def _parsed(self) -> Any:
        """The body's value, kept or not by the caller."""
        if self._json is not None or self.body is None:
            return self._json
        return loads(self.body)

    @property
    def finished(self) -> bool:
        return self.ended is not None

    def finish(self, ended: float) -> None:
        with _finished:
            self.ended = ended
            _finished.notify_all()

    def wait(self, timeout: float = 5.0) -> Call:
        """Wait until the server is done with this call (e.g. has seen the client hang up)."""
        with _finished:
            if not _finished.wait_for(lambda: self.ended is not None, timeout):
                raise TimeoutError(f"call {self.method} {self.path} still running after {timeout} s")
        return self

    @property
    def retry_after(self) -> float | None:
        """The ``Retry-After`` (seconds) this call's response told the client, if any."""
        value = _header(self.response_headers, "Retry-After")
        try:
            return float(value) if value is not None else None
        except ValueError:
            return None

    @property
    def last_event_id(self) -> str | None:
        return _header(self.headers, "Last-Event-ID")

    @property
    def failed(self) -> bool:
        """The client did not get a complete answer: an error status or a stream fault."""
        return self.outcome.startswith("fault:") or (self.status or 0) >= 400

    @property
    def client_abort_after(self) -> float | None:
        """For a client that hung up: seconds from the last byte sent (or the request, if none)
        to the moment the client closed the connection."""
        if self.outcome != "client-disconnected" or self.ended is None:
            return None
        return self.ended - (self.last_byte if self.last_byte is not None else self.started)

    def waited(self, now: float) -> float:
        """Seconds the stream has waited for the client to read, a wait under way included."""
        blocked = self.blocked_since
        return self.backpressure_wait + (now - blocked if blocked is not None else 0.0)

    def to_dict(
        self, epoch: float = 0.0, now: float | None = None, secret: frozenset[str] = SECRET_HEADERS
    ) -> dict[str, Any]:
        """JSON-ready, with times in seconds since ``epoch``; ``now`` counts a write's wait for
        the reader that is still under way into ``backpressure_wait``; the headers named in
        ``secret`` (lower case) are redacted. The body is parsed for this without being kept
        (a poll of ``GET /_mockllm/calls`` would otherwise keep every call's parsed copy)."""

        def rel(t: float | None) -> float | None:
            return None if t is None else round(t - epoch, 6)

        return {
            "method": self.method,
            "path": self.path,
            "headers": redacted(self.headers, secret),
            "json": self._parsed(),
            "scenario": self.scenario,
            "reason": self.reason,
            "why": self.why,
            "test": self.test,
            "conversation": self.conversation.to_dict() if self.conversation is not None else None,
            "format": self.format,
            "stream": self.stream,
            "status": self.status,
            "response_headers": redacted(self.response_headers, secret),
            "last_event_id": self.last_event_id,
            "outcome": self.outcome,
            "tokens_sent": self.tokens_sent,
            "bytes_sent": self.bytes_sent,
            "started": rel(self.started),
            "first_byte": rel(self.first_byte),
            "last_byte": rel(self.last_byte),
            "ended": rel(self.ended),
            "max_lateness": round(self.max_lateness, 6),
            "backpressure_wait": round(self.waited(now) if now is not None else self.backpressure_wait, 6),
            "finished": self.finished,
            "chaos": self.chaos,
        }


def redacted(headers: Mapping[str, str], secret: frozenset[str] = SECRET_HEADERS) -> dict[str, str]:
    """``headers`` with the values of those named in ``secret`` (lower case) redacted."""
    return {name: redact(value) if name.lower() in secret else value for name, value in headers.items()}


def redact(value: str) -> str:
    """A credential as it may be shown: its scheme, if any, and its last four characters if it
    is long enough that they give nothing away (``Bearer sk-…`` → ``Bearer …abcd``)."""
    scheme, space, secret = value.strip().rpartition(" ")
    tail = secret[-4:] if len(secret) >= 12 else ""
    return f"{scheme}{space}…{tail}"


class CallLog:
    """The calls a server received, oldest first. Appended to by the server thread only.

    Bounded: past ``limit`` calls the oldest is dropped for each new one, and :attr:`dropped`
    counts them (a long-running service must not grow without end)."""

    def __init__(self, calls: list[Call] | None = None, *, limit: int = MAX_CALLS) -> None:
        self._calls: deque[Call] = deque(calls if calls is not None else [], maxlen=limit)
        self.limit = limit
        #: Calls dropped, oldest first, to keep the log at :attr:`limit`.
        self.dropped = 0

    def append(self, call: Call) -> None:
        if len(self._calls) == self.limit:
            self.dropped += 1
        self._calls.append(call)

    def __iter__(self) -> Iterator[Call]:
        return iter(list(self._calls))

    def __len__(self) -> int:
        return len(self._calls)

    @overload
    def __getitem__(self, index: int) -> Call: ...

    @overload
    def __getitem__(self, index: slice) -> list[Call]: ...

    def __getitem__(self, index: int | slice) -> Call | list[Call]:
        if isinstance(index, slice):
            return list(self._calls)[index]
        return self._calls[index]

    def __repr__(self) -> str:
        return f"<CallLog {len(self)} calls: {[f'{c.method} {c.path} {c.status}' for c in self]}>"

    @property
    def call_count(self) -> int:
        return len(self._calls)

    @property
    def called(self) -> bool:
        return bool(self._calls)

    @property
    def last(self) -> Call:
        if not self._calls:
            raise AssertionError("no calls were made to the mock server")
        return self._calls[-1]

    def wait(self, timeout: float = 5.0) -> CallLog:
        """Wait until the server is done with every call so far."""
        for call in self:
            call.wait(timeout)
        return self

    def to_list(
        self, epoch: float = 0.0, now: float | None = None, secret: frozenset[str] = SECRET_HEADERS
    ) -> list[dict[str, Any]]:
        return [call.to_dict(epoch, now, secret) for call in self]

    # -- what the client did about faults ---------------------------------------------------------

    def _next_of(self, index: int) -> Call | None:
        """The client's next call to the same scenario and path after call ``index``: its retry."""
        call = self._calls[index]
        for later in itertools.islice(self._calls, index + 1, None):
            if (later.scenario, later.path) == (call.scenario, call.path):
                return later
        return None

    def assert_retried(self) -> None:
        """Every failed call (error status or stream fault) was followed by a retry."""
        for index, call in enumerate(self._calls):
            if call.failed and self._next_of(index) is None:
                raise AssertionError(
                    f"call {index + 1} ({describe(call)}) ended with {ending(call)} "
                    "and the client never retried"
                )

    def assert_retry_after_honoured(self) -> None:
        """Every retry waited at least the ``Retry-After`` its failed call gave."""
        for _, story in self.retry_after_ignored():
            raise AssertionError(story)

    def assert_no_truncation_accepted(self) -> None:
        """No stream that ended early without ``finish_reason``/``[DONE]`` was taken as complete:
        each was followed by a retry."""
        for _, story in self.truncations_accepted():
            raise AssertionError(story)

    def assert_client_aborted(self, within: float) -> None:
        """The last call's client hung up no later than ``within`` seconds after the last byte
        (its read timeout fired in time)."""
        call = self.last.wait()
        if call.client_abort_after is None:
            raise AssertionError(
                f"the client of call {len(self)} ({describe(call)}) did not hang up: "
                f"the call ended with {ending(call)}"
            )
        story = late_abort(call, len(self), within)
        if story:
            raise AssertionError(story)

    # The stories of every violation, for the verdict (mockllm.verdict) and the asserts above.

    def retry_after_ignored(self) -> Iterator[tuple[Call, str]]:
        """Each retry that came sooner than the ``Retry-After`` of the call it retried."""
        calls = list(self._calls)
        for index, call in enumerate(calls):
            told = call.retry_after
            retry = self._next_of(index)
            if told is None or retry is None or call.ended is None:
                continue
            waited = retry.started - call.ended
            if waited < told:
                yield (
                    retry,
                    (
                        f"call {calls.index(retry) + 1} retried after {waited:.2f} s "
                        f"but call {index + 1} said Retry-After: "
                        f"{_header(call.response_headers, 'Retry-After')}"
                    ),
                )

    def truncations_accepted(self) -> Iterator[tuple[Call, str]]:
        """Each truncated stream (no finish, no ``[DONE]``) the client did not retry."""
        for index, call in enumerate(self._calls):
            if call.outcome == "fault:truncate" and self._next_of(index) is None:
                yield (
                    call,
                    (
                        f"call {index + 1} ({describe(call)}) was truncated after "
                        f"{call.tokens_sent} tokens, with no finish_reason and no [DONE], and the "
                        "client did not retry: it accepted a partial answer as complete"
                    ),
                )


def late_abort(call: Call, number: int, within: float) -> str | None:
    """The story of a client that hung up later than ``within`` seconds after the last byte."""
    after = call.client_abort_after
    if after is None or after <= within:
        return None
    return (
        f"the client of call {number} hung up {after:.2f} s after the last byte; expected within {within:g} s"
    )


def describe(call: Call) -> str:
    return f"{call.method} {call.path}, scenario {call.scenario!r}"


def ending(call: Call) -> str:
    return f"HTTP {call.status}" if call.outcome in (FAULT_STATUS, REJECTED) else call.outcome


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """A header by name, case-insensitively."""
    wanted = name.lower()
    return next((value for key, value in headers.items() if key.lower() == wanted), None)
