"""The aiohttp application: routes, request handling and error responses.

Endpoints:
- One ``POST`` endpoint per wire format (``/v1/chat/completions``, ``/v1/completions``,
  ``/v1/responses``, ``/v1/messages``, ``/api/chat``, ``/api/generate``): a scenario, streamed or
  whole, in that API's format.
- ``GET /v1/models``: the loaded scenarios, as models.
- ``GET /healthz``: 200 once the server is ready.
- ``/_mockllm/...``: the control API (:mod:`mockllm.control`), unless turned off.

Every error is a JSON body in the API's own shape, never an HTML page or a traceback. An exception
in a handler (a bug) is answered with a 500, logged, and kept in ``ServerState.errors`` so the
pytest fixture can fail the test that caused it.
"""

from __future__ import annotations

import copy
import itertools
import json
import logging
import os
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from aiohttp import hdrs, web

from .calls import FAULT_STATUS, REJECTED, Call, CallLog
from .clock import Clock, LoopClock
from .errors import ScenarioNotFound
from .events import Close, Hang, Malformed, Preamble, Step, StreamError, Token, ToolCallEnd
from .formats import (
    FORMATS,
    ApiRequest,
    RequestError,
    StreamContext,
    StreamEncoder,
    WholeReply,
    WireFormat,
)
from .scenario import Scenario, ToolCall
from .selection import HEADER, ScenarioSet
from .streaming import ResponseSink, play
from .timeline import build_timeline, stream_timeline

log = logging.getLogger("mockllm")

#: Large enough for long conversations; beyond it a request gets a 413 in the API's shape.
MAX_BODY = 16 * 1024 * 1024
access_log = logging.getLogger("mockllm.access")


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


STATE = web.AppKey("mockllm_state", ServerState)
CALL = web.RequestKey("mockllm_call", Call)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
#: Paths that are not calls to the mocked API, and so are not logged.
UNLOGGED = ("/healthz", "/_mockllm/")


def create_app(
    scenarios: Sequence[Scenario],
    *,
    clock: Clock | None = None,
    time_scale: float = 1.0,
    options: Options | None = None,
) -> web.Application:
    """An application serving ``scenarios`` (the first is the default)."""
    options = options or Options()
    middlewares = [_record, _json_errors, *([_preflight] if options.cors else []), _auth]
    app = web.Application(middlewares=middlewares, client_max_size=options.max_body)
    state = ServerState(ScenarioSet(scenarios), clock or LoopClock(), time_scale, options=options)
    app[STATE] = state
    for fmt in FORMATS.values():
        app.router.add_post(fmt.path, _completion_handler(fmt))
    app.router.add_get("/v1/models", _models)
    app.router.add_get("/v1/stream", _event_source)
    app.router.add_get("/", _playground)
    app.router.add_get("/healthz", _healthz)
    if options.control:
        from .control import add_routes

        add_routes(app)
    if options.config.get("workers", 1) > 1:
        app.on_response_prepare.append(_worker_header)
    if options.cors:
        app.on_response_prepare.append(_cors_headers)

    async def set_epoch(app: web.Application) -> None:
        state.epoch = state.clock.now()

    app.on_startup.append(set_epoch)
    return app


@web.middleware
async def _record(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Log every call to the mocked API; the handler fills in what it learns."""
    state = request.app[STATE]
    state.clock.run_due()  # the streams already playing keep their pace through a burst of requests
    if request.path.startswith(UNLOGGED):
        return await handler(request)
    call = Call(
        method=request.method,
        path=request.path,
        headers=dict(request.headers),
        started=state.clock.now(),
    )
    state.calls.append(call)
    request[CALL] = call
    try:
        response = await handler(request)
    except BaseException:
        call.outcome = "client-disconnected" if call.outcome == "started" else call.outcome
        call.finish(state.clock.now())
        _log_call(call)
        raise
    if call.status is None:
        call.status = response.status
        call.response_headers = dict(response.headers)
    if call.outcome == "started":
        call.outcome = REJECTED if response.status >= 400 else "completed"
    call.finish(state.clock.now())
    _log_call(call)
    state.clock.run_due()
    return response


def _log_call(call: Call) -> None:
    """One line per call: method, path, scenario, status, outcome, tokens, duration."""
    if not access_log.isEnabledFor(logging.INFO):
        return
    duration = (call.ended or call.started) - call.started
    fields = {
        "method": call.method,
        "path": call.path,
        "scenario": call.scenario,
        "format": call.format,
        "status": call.status,
        "outcome": call.outcome,
        "tokens": call.tokens_sent,
        "duration": round(duration, 4),
        "late": round(call.max_lateness, 4),
    }
    text = (
        f"{call.method} {call.path} scenario={call.scenario or '-'} status={call.status} "
        f"outcome={call.outcome} tokens={call.tokens_sent} duration={duration:.3f}s"
        + (f" late={call.max_lateness * 1000:.1f}ms" if call.max_lateness > 0.002 else "")
    )
    access_log.info(text, extra={"fields": fields})


def _error(fmt: WireFormat, status: int, message: str, **fields: Any) -> web.Response:
    fields.setdefault("type", "server_error" if status >= 500 else "invalid_request_error")
    fields.setdefault("param", None)
    fields.setdefault("code", None)
    return web.json_response(fmt.error_body(status, message, **fields), status=status)


@web.middleware
async def _json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn aiohttp's HTML errors (unknown path, wrong method, body too large) into API JSON."""
    fmt = FORMATS["openai-chat"]
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        if exc.status == 404:
            message = f"Invalid URL ({request.method} {request.path})"
        elif exc.status == 405:
            message = f"Method {request.method} is not allowed for {request.path}"
        elif exc.status == 413:
            limit = request.app[STATE].options.max_body
            message = f"The request body is too large: the limit is {limit} bytes."
        else:
            message = exc.text or exc.reason
        return _error(fmt, exc.status, message)
    except Exception as exc:  # a bug in mockllm: answer, log, and keep it for the test to see
        log.exception("mockllm: handler for %s %s failed", request.method, request.path)
        request.app[STATE].errors.append(exc)
        return _error(fmt, 500, f"mockllm internal error: {exc!r}", code="mockllm_internal_error")


async def _models(request: web.Request) -> web.Response:
    names = request.app[STATE].scenarios.names
    data = [{"id": name, "object": "model", "created": 0, "owned_by": "mockllm"} for name in names]
    return web.json_response({"object": "list", "data": data})


async def _healthz(request: web.Request) -> web.Response:
    scenarios = len(request.app[STATE].scenarios.names)
    return web.json_response({"status": "ok", "scenarios": scenarios, "pid": os.getpid()})


async def _worker_header(request: web.Request, response: web.StreamResponse) -> None:
    """With several worker processes, every response says which one answered."""
    response.headers["X-Mockllm-Worker"] = str(os.getpid())


# -- browsers ---------------------------------------------------------------------------------------


async def _cors_headers(request: web.Request, response: web.StreamResponse) -> None:
    """CORS headers on every response to an allowed origin: streams and errors too (a browser
    hides the body of an error response that lacks them)."""
    allowed = request.app[STATE].options.cors
    origin = request.headers.get(hdrs.ORIGIN)
    if origin is None:
        return
    if "*" in allowed:
        response.headers[hdrs.ACCESS_CONTROL_ALLOW_ORIGIN] = "*"
    elif origin in allowed:
        response.headers[hdrs.ACCESS_CONTROL_ALLOW_ORIGIN] = origin
        response.headers.add(hdrs.VARY, "Origin")
    else:
        return
    response.headers[hdrs.ACCESS_CONTROL_EXPOSE_HEADERS] = HEADER


@web.middleware
async def _preflight(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer a CORS preflight (before the API-key check: browsers send no credentials on it)."""
    if request.method == "OPTIONS" and hdrs.ACCESS_CONTROL_REQUEST_METHOD in request.headers:
        headers = {
            hdrs.ACCESS_CONTROL_ALLOW_METHODS: "GET, POST, OPTIONS",
            hdrs.ACCESS_CONTROL_ALLOW_HEADERS: request.headers.get(hdrs.ACCESS_CONTROL_REQUEST_HEADERS, ""),
            hdrs.ACCESS_CONTROL_MAX_AGE: "600",
        }
        return web.Response(status=204, headers=headers)
    return await handler(request)


async def _playground(request: web.Request) -> web.Response:
    """The playground page: a static file from the package (never a path from the request)."""
    from importlib import resources

    page = resources.files("mockllm").joinpath("data/playground/index.html").read_bytes()
    return web.Response(body=page, content_type="text/html", charset="utf-8")


async def _event_source(request: web.Request) -> web.StreamResponse:
    """``GET /v1/stream?scenario=NAME``: the scenario as OpenAI chat chunks that ``new
    EventSource(url)`` can read, with an ``id:`` on every event. A reconnect carrying
    ``Last-Event-ID: N`` resumes at event N + 1, at once; one after the last event gets 204, which
    tells an EventSource to stop reconnecting."""
    state = request.app[STATE]
    fmt = FORMATS["openai-chat"]
    call = request[CALL]
    call.format = fmt.name
    name = request.query.get("scenario")
    last = request.headers.get("Last-Event-ID")
    try:
        chosen, call.reason = state.scenarios.pick(name, None)
    except ScenarioNotFound as exc:
        return _error(fmt, 404, str(exc), code="scenario_not_found")
    call.stream = True
    scenario = await _begin(request, fmt, chosen, call)
    if isinstance(scenario, web.Response):
        return scenario
    after = int(last) if last is not None and last.strip().isdigit() else 0
    # Event N is token N - 1 (one chunk per token), so a resume at event N + 1 starts at token N.
    # The faults before it, among them the disconnect that made the client reconnect, are behind us.
    faults = tuple(f for f in scenario.faults if not (isinstance(f.at, int) and f.at <= after))
    scenario = replace(scenario, wire=replace(scenario.wire, event_ids=True), faults=faults)
    api_request = ApiRequest(model=scenario.name, stream=True, prompt_tokens=0, body=dict(request.query))
    return await _stream(Reply.build(request, fmt, scenario, api_request, call), resume_after=after)


#: The paths that take the mocked APIs' credentials.
API_PATHS = {fmt.path: fmt for fmt in FORMATS.values()} | {"/v1/models": FORMATS["openai-chat"]}


@web.middleware
async def _auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    """With ``--api-key``, the LLM endpoints answer a wrong or missing key with a 401 in their
    API's shape (so clients' auth-error handling can be tested); the control API has its own
    token."""
    options = request.app[STATE].options
    fmt = API_PATHS.get(request.path)
    if fmt is not None and options.api_key is not None:
        bearer = request.headers.get(hdrs.AUTHORIZATION, "").removeprefix("Bearer ").strip()
        if options.api_key not in (bearer, request.headers.get("x-api-key")):
            message, kind, code = fmt.default_error(401)
            return web.json_response(
                fmt.error_body(401, message, type=kind, param=None, code=code), status=401
            )
    token = options.control_token
    if (
        request.path.startswith("/_mockllm/")
        and token is not None
        and request.headers.get(hdrs.AUTHORIZATION) != f"Bearer {token}"
    ):
        return web.json_response(
            {"error": {"message": "The control API needs Authorization: Bearer <control token>."}},
            status=401,
        )
    return await handler(request)


def _completion_handler(fmt: WireFormat) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        state = request.app[STATE]
        call = request[CALL]
        call.format = fmt.name
        try:
            body = await _read_json(request)
            call.json = body
            api_request = fmt.parse_request(body)
            chosen, call.reason = state.scenarios.pick(request.headers.get(HEADER), api_request.model)
        except RequestError as exc:
            return _error(fmt, exc.status, exc.message, type=exc.type, param=exc.param, code=exc.code)
        except ScenarioNotFound as exc:
            return _error(fmt, 404, str(exc), code="scenario_not_found")
        call.stream = api_request.stream
        scenario = await _begin(request, fmt, chosen, call)
        if isinstance(scenario, web.Response):
            return scenario
        reply = Reply.build(request, fmt, scenario, api_request, call)
        return await (_stream(reply) if api_request.stream else _whole(reply))

    return handle


async def _begin(
    request: web.Request, fmt: WireFormat, chosen: Scenario, call: Call
) -> Scenario | web.Response:
    """The step of ``chosen`` this call plays (the next of a ``sequence``), once its
    ``first_byte`` delay has passed; or, for a step with a ``status``, the response to send."""
    state = request.app[STATE]
    call.scenario = chosen.name
    scenario = state.scenarios.next_step(chosen)
    if scenario.first_byte:
        clock = state.clock
        await clock.sleep_until(clock.now() + scenario.first_byte * state.time_scale)
    if scenario.status is not None:
        call.outcome = FAULT_STATUS
        return _status_response(fmt, scenario)
    return scenario


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


async def _read_json(request: web.Request) -> Any:
    try:
        return json.loads(await request.read())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise RequestError(
            400,
            "We could not parse the JSON body of your request. The API expects a JSON payload, "
            "but what was sent was not valid JSON.",
            code="invalid_json",
        ) from None


def _status_response(fmt: WireFormat, scenario: Scenario) -> web.Response:
    status = scenario.status
    assert status is not None
    headers = dict(scenario.headers)
    if scenario.body is None:
        message, kind, code = fmt.default_error(status)
        return web.json_response(
            fmt.error_body(status, message, type=kind, param=None, code=code),
            status=status,
            headers=headers,
        )
    if isinstance(scenario.body, str):
        headers.setdefault(hdrs.CONTENT_TYPE, "text/plain; charset=utf-8")
        return web.Response(text=scenario.body, status=status, headers=headers)
    return web.json_response(scenario.body, status=status, headers=headers)


class StreamingResponse(web.StreamResponse):
    """A stream response that can also be close-delimited or have no Content-Type.

    aiohttp's StreamResponse always chunks an HTTP/1.1 body of unknown length. For
    ``framing: close-delimited`` we turn off its length check (as aiohttp's own WebSocketResponse
    does), so the body is written raw and ends at FIN. For ``content_type: ""`` the Content-Type
    aiohttp would default to ``application/octet-stream`` is removed.
    """

    def __init__(self, scenario: Scenario, *, default_type: str, headers_with_body: bool = False) -> None:
        super().__init__(status=200)
        # aiohttp sends the headers in prepare(), a write of their own; when the first body bytes
        # are due at once anyway, they share it (one send fewer per request, same bytes).
        self._send_headers_immediately = not headers_with_body
        wire = scenario.wire
        self._omit_type = wire.content_type == ""
        if not self._omit_type:
            self.headers[hdrs.CONTENT_TYPE] = wire.content_type or default_type
        self.headers[hdrs.CACHE_CONTROL] = "no-cache"
        self.headers[HEADER] = scenario.name
        self.headers.extend(scenario.headers)
        if wire.framing == "close-delimited":
            self._length_check = False
            self.force_close()

    async def _prepare_headers(self) -> None:
        await super()._prepare_headers()
        if self._omit_type:
            self._headers.popall(hdrs.CONTENT_TYPE, None)


async def _stream(reply: Reply, *, resume_after: int = 0) -> web.StreamResponse:
    request, state, scenario, call = reply.request, reply.state, reply.scenario, reply.call
    steps: Iterable[Step] = stream_timeline(scenario, time_scale=state.time_scale)
    encoder = reply.encoder()
    if resume_after:
        resumed = resume(steps, encoder, resume_after)
        if resumed is None:
            call.status = 204
            call.outcome = "ended"  # nothing after that event: an EventSource stops reconnecting
            return web.Response(status=204)
        steps = resumed
    # Headers wait for the body only if a token is due at once (the preamble aside): never
    # before a stall, a hang or a disconnect at the start, which the client sees after them.
    rest = iter(steps)
    head = list(itertools.islice(rest, 2))
    steps = itertools.chain(head, rest)
    opening = [step for step in head if not isinstance(step.event, Preamble)][:1]
    body_at_once = bool(opening) and opening[0].deadline == 0 and isinstance(opening[0].event, Token)
    response = StreamingResponse(
        scenario, default_type=reply.fmt.content_type, headers_with_body=body_at_once
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


def resume(steps: Iterable[Step], encoder: StreamEncoder, after: int) -> list[Step] | None:
    """The steps that follow event id ``after``, re-timed to start at once, with ``encoder``
    having consumed the ones before (so ids and stream state continue); None if none follows.
    Faults before the resume point (the disconnect that caused the reconnect) are not repeated."""
    iterator = iter(steps)
    for step in iterator:
        data = encoder.encode(step.event)
        if encoder.last_id > after:
            start = step.deadline
            first = Step(0.0, Malformed("raw", step.event, raw=data))  # already encoded: sent as is
            rest = [Step(max(0.0, later.deadline - start), later.event) for later in iterator]
            return [first, *rest]
    return None


async def _whole(reply: Reply) -> web.StreamResponse:
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
    end: StreamError | Hang | Close | None = None
    deadline = 0.0
    for step in build_timeline(scenario, time_scale=state.time_scale, streaming=False):
        deadline = step.deadline
        event = step.event
        if isinstance(event, Token):
            tokens += 1
            if event.tool is None:
                text.append(event.text)
        elif isinstance(event, ToolCallEnd):
            tool_calls.append(ToolCall(event.name, event.arguments, event.id))
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
        return _error(fmt, 500, end.message, type=end.type, code=end.code)
    if isinstance(end, Close):
        call.outcome = end.outcome
        if end.mode != "eof":
            await ResponseSink(request, web.StreamResponse()).close(end.mode)
            return web.Response(status=500)  # never reaches the client: its connection is gone
    whole = WholeReply("".join(text), finish, tokens, tuple(tool_calls))
    body = fmt.response_body(reply.api_request, reply.context, whole)
    return web.json_response(body, dumps=dumps)


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)
