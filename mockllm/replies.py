"""The answer to one completion request, once its scenario is chosen: the ``sequence`` step and
``first_byte`` wait (:func:`begin`), a scripted HTTP status, a stream (:func:`stream`, with
:func:`resume` for an EventSource reconnect) or a whole non-streaming body (:func:`whole`).
"""

from __future__ import annotations

import copy
import itertools
import logging
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote

from aiohttp import hdrs, web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError

from . import resume
from .calls import FAULT_STATUS, Call
from .events import Close, Finish, Fragment, Hang, Preamble, Step, StreamError, Token, ToolCallEnd
from .formats import ApiRequest, RequestError, StreamContext, StreamEncoder, WholeReply, WireFormat
from .formats.fields import read_body
from .guards import api_key, error_response
from .quotas import context_error
from .scenario import Scenario, ToolCall
from .selection import HEADER
from .sink import ResponseSink
from .state import STATE, ServerState, dumps
from .streaming import play
from .timeline import build_timeline, stream_timeline

log = logging.getLogger("mockllm")


async def begin(
    request: web.Request,
    fmt: WireFormat,
    chosen: Scenario,
    call: Call,
    *,
    prompt_tokens: int = 0,
    replies: bool = True,
) -> Scenario | web.Response:
    """The step of ``chosen`` this call plays (the next of a ``sequence``), once its
    ``first_byte`` delay has passed; or, for a step with a ``status``, a prompt past the
    ``context_window`` or a request past the ``limits``, the response to send. ``replies``:
    the answer is the scenario's reply, whose tokens count against ``limits.tpm`` (an embeddings
    answer has none)."""
    state = request.app[STATE]
    call.scenario = chosen.name
    style = fmt.style
    if chosen.context_window is not None and prompt_tokens > chosen.context_window:
        call.outcome = FAULT_STATUS
        message = context_error(style, chosen.context_window, prompt_tokens)
        return error_response(fmt, 400, message, param="messages", code="context_length_exceeded")
    quota_headers: tuple[tuple[str, str], ...] = ()
    if chosen.limits is not None:
        tokens = prompt_tokens + (chosen.stream_token_count if replies else 0)
        quota = state.quotas.take(
            chosen, api_key(request), tokens, state.clock.now(), state.clock.wall(), style
        )
        if not quota.allowed:
            call.outcome = FAULT_STATUS
            message, kind, code = fmt.default_error(429)
            return error_response(fmt, 429, message, dict(quota.headers), type=kind, code=code)
        quota_headers = quota.headers
    scenario = state.scenarios.next_step(chosen, call.test)
    if quota_headers:
        scenario = replace(scenario, headers=scenario.headers + quota_headers)
    if chosen.chaos is not None:
        scenario = draw_chaos(request, chosen, scenario, call)
    timing = scenario.timing
    if timing.per_prompt_token:  # prefill: the first token waits longer for a longer prompt
        first = timing.first_token + timing.per_prompt_token * prompt_tokens
        scenario = replace(scenario, timing=replace(timing, first_token=first, per_prompt_token=0.0))
    if scenario.first_byte:
        clock = state.clock
        await clock.sleep_until(clock.now() + scenario.first_byte * state.time_scale)
    if scenario.status is not None:
        call.outcome = FAULT_STATUS
        return status_response(fmt, scenario, stream=call.stream)
    return scenario


#: Replays draw N of a scenario's chaos alone (N counted from 0), without counting a draw.
CHAOS_DRAW = "X-Mockllm-Chaos-Draw"


def draw_chaos(request: web.Request, chosen: Scenario, scenario: Scenario, call: Call) -> Scenario:
    """The n-th request ``chosen`` answers (per test scope) draws from ``Random(f"{seed}:{n}")``:
    with probability ``rate`` one of the options (by weight), an HTTP answer or a fault (its
    ``at: random`` a token index from the same draw). The call log records ``{n, fault}``."""
    chaos = chosen.chaos
    assert chaos is not None
    state = request.app[STATE]
    asked = request.headers.get(CHAOS_DRAW, "").strip()
    if asked.isdigit() and len(asked) < 19:
        n = int(asked)
    else:
        n = state.chaos_draws[(call.test, chosen.name)]
        state.chaos_draws[(call.test, chosen.name)] = n + 1
    rng = random.Random(f"{chaos.seed}:{n}")
    drawn = None
    if rng.random() < chaos.rate:
        drawn = rng.choices(range(len(chaos.options)), [o.weight for o in chaos.options])[0]
    call.chaos = {"n": n, "fault": drawn}
    if drawn is None:
        return scenario
    option = chaos.options[drawn]
    if option.step is not None:
        return option.step
    assert option.fault is not None
    fault = option.fault
    if option.random_at:
        fault = replace(fault, at=rng.randrange(max(1, scenario.stream_token_count)))
    faults = sorted((*scenario.faults, fault), key=lambda f: float("inf") if f.at is None else f.at)
    return replace(scenario, faults=tuple(faults))


@dataclass
class Reply:
    """Everything the answer to one completion request is made from."""

    request: web.Request
    state: ServerState
    fmt: WireFormat
    scenario: Scenario
    api_request: ApiRequest
    context: StreamContext
    call: Call

    @classmethod
    def build(
        cls, request: web.Request, fmt: WireFormat, scenario: Scenario, api_request: ApiRequest, call: Call
    ) -> Reply:
        """A reply with a fresh response id, created now, naming the scenario's model if it has one."""
        state = request.app[STATE]
        context = StreamContext(
            id=f"{fmt.id_prefix}{next(state.ids)}",
            created=int(state.clock.wall()),
            model=scenario.model or api_request.model,
        )
        return cls(request, state, fmt, scenario, api_request, context, call)

    def encoder(self) -> StreamEncoder:
        return self.fmt.stream_encoder(self.scenario, self.api_request, self.context)


def reported(api_request: ApiRequest, scenario: Scenario) -> ApiRequest:
    """``api_request`` as the reply reports it: with the prompt count of the scenario's
    ``usage`` if it gives one (the request was measured by mockllm's own count before this)."""
    usage = scenario.usage
    if usage is None or usage.prompt_tokens is None:
        return api_request
    return replace(api_request, prompt_tokens=usage.prompt_tokens)


async def read_json(request: web.Request) -> Any:
    """The request's JSON body (:func:`~mockllm.formats.fields.read_body`); a body aiohttp
    cannot read (a bad ``Content-Encoding``, a cut-off chunked body) is a 400 too."""
    try:
        raw = await request.read()
    except (HttpProcessingError, RequestPayloadError) as exc:
        cause: BaseException | None = exc
        while cause is not None and not isinstance(cause, HttpProcessingError):
            cause = cause.__cause__  # aiohttp wraps the parser's error in a RequestPayloadError
        reason = cause.message if cause is not None else str(exc)
        message = f"The request body could not be read: {reason.strip().rstrip('.')}."
        raise RequestError(400, message, code="invalid_body") from None
    return read_body(raw)


def status_response(fmt: WireFormat, scenario: Scenario, *, stream: bool = False) -> web.Response:
    """The scripted answer: the error (``body``, else the format's own), or a success without a
    stream (204; 200 with ``body``, or empty with the type of what was asked for)."""
    status = scenario.status
    assert status is not None
    headers = dict(scenario.headers)
    if status < 300 and scenario.body is None:  # a success without a stream: 204, or 200 with no body
        response = web.Response(status=status, headers=headers)
        if status != 204:
            # what the client asked for, with nothing in it
            response.content_type = fmt.content_type if stream else "application/json"
        return response
    message, kind, code = fmt.default_error(status)
    if scenario.body is None:
        return error_response(fmt, status, message, headers, type=kind, code=code)
    if status >= 400:
        headers = {**fmt.error_headers(status, kind), **headers}
    if isinstance(scenario.body, str):
        headers.setdefault(hdrs.CONTENT_TYPE, "text/plain; charset=utf-8")
        return web.Response(text=scenario.body, status=status, headers=headers)
    return web.json_response(scenario.body, status=status, headers=headers)


def header_value(text: str) -> str:
    """``text`` as an HTTP header value: printable ASCII as is, anything else (a scenario named
    in another script, a control character) percent-encoded as UTF-8, the way RFC 8187 does."""
    return text if text.isascii() and text.isprintable() and "%" not in text else quote(text, safe=_SAFE)


_SAFE = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "%")


class StreamingResponse(web.StreamResponse):
    """A stream response that can also be close-delimited or have no Content-Type.

    aiohttp's StreamResponse always chunks an HTTP/1.1 body of unknown length. For
    ``framing: close-delimited`` we turn off its length check (as aiohttp's own WebSocketResponse
    does), so the body is written raw and ends at FIN. For ``content_type: ""`` the Content-Type
    aiohttp would default to ``application/octet-stream`` is removed.
    """

    def __init__(
        self,
        scenario: Scenario,
        *,
        default_type: str,
        headers_with_body: bool = False,
        format_headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(status=200)
        # aiohttp sends the headers in prepare(), a write of their own; when the first body bytes
        # are due at once anyway, they share it (one send fewer per request, same bytes).
        self._send_headers_immediately = not headers_with_body
        wire = scenario.wire
        self._omit_type = wire.content_type == ""
        if not self._omit_type:
            self.headers[hdrs.CONTENT_TYPE] = default_type if wire.content_type is None else wire.content_type
        self.headers[hdrs.CACHE_CONTROL] = "no-cache"
        self.headers[HEADER] = header_value(scenario.name)
        given = {name.lower() for name, _ in scenario.headers}  # the scenario's own win
        self.headers.update({k: v for k, v in (format_headers or {}).items() if k.lower() not in given})
        self.headers.extend(scenario.headers)
        if wire.framing == "close-delimited":
            self._length_check = False
            self.force_close()

    async def _prepare_headers(self) -> None:
        await super()._prepare_headers()
        if self._omit_type:
            self._headers.popall(hdrs.CONTENT_TYPE, None)


async def stream(reply: Reply, *, last_event_id: int | None = None) -> web.StreamResponse:
    """The stream, or (``last_event_id`` given) its rest after that event (:mod:`mockllm.resume`)."""
    request, state, scenario, call = reply.request, reply.state, reply.scenario, reply.call
    steps: Iterable[Step] = stream_timeline(scenario, time_scale=state.time_scale)
    encoder = reply.encoder()
    if last_event_id is not None:
        resumed = resume.resumed(scenario, encoder, last_event_id, time_scale=state.time_scale)
        if resumed is None:
            call.status = 204
            call.outcome = "ended"  # nothing after that event: an EventSource stops reconnecting
            return web.Response(status=204)
        steps = resumed
    # Headers wait for the body only if a token is due at once (the preamble aside): never
    # before a stall, a hang or a disconnect at the start, which the client sees after them.
    if isinstance(steps, tuple):  # a shared timeline: kept as it is (:mod:`mockllm.runs`)
        head = list(steps[:2])
    else:
        rest = iter(steps)
        head = list(itertools.islice(rest, 2))
        steps = itertools.chain(head, rest)
    opening = [step for step in head if not isinstance(step.event, Preamble)][:1]
    body_at_once = bool(opening) and opening[0].deadline == 0 and isinstance(opening[0].event, Token)
    response = StreamingResponse(
        scenario,
        default_type=reply.fmt.stream_content_type(reply.api_request),
        headers_with_body=body_at_once,
        format_headers=reply.fmt.stream_headers(reply.api_request),
    )
    if scenario.wire.framing == "content-length":
        # The body is deterministic (and finite: the loader refuses a forever stall here), so
        # encoding it once without waiting gives its length.
        steps = list(steps)
        counter = copy.deepcopy(encoder)
        response.content_length = sum(len(counter.encode(step.event)) for step in steps)
    call.status = response.status
    call.response_headers = dict(response.headers)
    await response.prepare(request)
    try:
        await play(
            steps,
            encoder,
            ResponseSink(request, response, headers_sent=not body_at_once),
            state.clock,
            coalesce=scenario.wire.flush == "due",
            outcome=call,
        )
    except Exception as exc:  # a bug: the headers are sent, so all we can do is keep it and hang up
        log.exception("mockllm: stream of scenario %r failed", scenario.name)
        state.errors.append(exc)
        call.outcome = "server-error"
        if request.transport is not None:
            request.transport.close()
    return response


async def whole(reply: Reply) -> web.StreamResponse:
    """A non-streaming response: the whole reply after the scenario's total time.

    Faults keep their meaning where one exists without a stream: stalls add time, ``error_event``
    becomes an HTTP 500 with that error, ``fin``/``mid-event``/``reset`` drop the connection
    without a response, ``truncate`` returns the text so far with ``finish_reason: length``, and
    ``stall: forever`` never answers. Byte-level faults (malformed lines, splits) do not apply.
    """
    request, state, scenario, fmt, call = (reply.request, reply.state, reply.scenario, reply.fmt, reply.call)
    text: list[str] = []
    tokens = 0
    tool_calls: list[ToolCall] = []
    finish = scenario.finish_reason
    filtered: tuple[str, str] | None = None
    counted: int | None = None  # the finish's count (the scenario's ``usage``, else the tokens)
    end: StreamError | Hang | Close | None = None
    deadline = 0.0
    for step in build_timeline(scenario, time_scale=state.time_scale, streaming=False):
        deadline = step.deadline
        event = step.event
        if isinstance(event, Fragment) and event.part == "tail":
            event = event.event  # a split or mid-event stall: the whole event, once
        if isinstance(event, Token):
            tokens += 1
            if event.tool is None:
                text.append(event.text)
        elif isinstance(event, ToolCallEnd):
            tool_calls.append(ToolCall(event.name, event.arguments, event.id))
        elif isinstance(event, Finish):
            finish, filtered, counted = event.reason, event.filtered, event.completion_tokens
        elif isinstance(event, StreamError | Hang):
            end = event
            break
        elif isinstance(event, Close):
            if event.outcome != "completed":
                end = event
                finish = "length"
            break
    clock = state.clock
    await clock.sleep_until(clock.now() + deadline)
    call.tokens_sent = tokens
    if isinstance(end, Hang):
        call.outcome = "fault:stall-forever"
        await ResponseSink(request, web.StreamResponse()).hang()
    if isinstance(end, StreamError):
        call.outcome = "fault:error_event"
        return error_response(fmt, 500, end.message, type=end.type, code=end.code)
    if isinstance(end, Close):
        call.outcome = end.outcome
        if end.mode != "eof":
            await ResponseSink(request, web.StreamResponse()).close(end.mode)
            return web.Response(status=500)  # never reaches the client: its connection is gone
    counted = tokens if counted is None else counted
    whole = WholeReply(
        "".join(text), finish, counted, tuple(tool_calls), filtered=filtered, duration=deadline
    )
    body = fmt.response_body(reply.api_request, reply.context, whole)
    headers = {HEADER: header_value(scenario.name), **dict(scenario.headers)}
    return web.json_response(body, dumps=dumps, headers=headers)
