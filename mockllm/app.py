"""The aiohttp application: routes, request handling and error responses.

Endpoints:
- ``POST /v1/chat/completions``: a scenario, streamed (``"stream": true``) or whole.
- ``GET /v1/models``: the loaded scenarios, as models.
- ``GET /healthz``: 200 once the server is ready.

Every error is a JSON body in the API's own shape, never an HTML page or a traceback.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import hdrs, web

from .clock import Clock, LoopClock
from .errors import ScenarioNotFound
from .events import Close, Hang, StreamError, Token
from .formats import FORMATS, ApiRequest, RequestError, StreamContext, WireFormat
from .scenario import Scenario
from .selection import HEADER, ScenarioSet
from .streaming import Outcome, ResponseSink, play
from .timeline import build_timeline

log = logging.getLogger("mockllm")

#: Large enough for long conversations; beyond it a request gets a 413 in the API's shape.
MAX_BODY = 16 * 1024 * 1024


@dataclass
class ServerState:
    """Everything a running server knows, kept on the application under :data:`STATE`."""

    scenarios: ScenarioSet
    clock: Clock = field(default_factory=LoopClock)
    time_scale: float = 1.0
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))


STATE = web.AppKey("mockllm_state", ServerState)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def create_app(
    scenarios: Sequence[Scenario],
    *,
    clock: Clock | None = None,
    time_scale: float = 1.0,
) -> web.Application:
    """An application serving ``scenarios`` (the first is the default)."""
    app = web.Application(middlewares=[_json_errors], client_max_size=MAX_BODY)
    app[STATE] = ServerState(ScenarioSet(scenarios), clock or LoopClock(), time_scale)
    for fmt in FORMATS.values():
        app.router.add_post(fmt.path, _completion_handler(fmt))
    app.router.add_get("/v1/models", _models)
    app.router.add_get("/healthz", _healthz)
    return app


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
            message = f"The request body is too large: the limit is {MAX_BODY} bytes."
        else:
            message = exc.text or exc.reason
        return _error(fmt, exc.status, message)


async def _models(request: web.Request) -> web.Response:
    names = request.app[STATE].scenarios.names
    data = [{"id": name, "object": "model", "created": 0, "owned_by": "mockllm"} for name in names]
    return web.json_response({"object": "list", "data": data})


async def _healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "scenarios": len(request.app[STATE].scenarios.names)})


def _completion_handler(fmt: WireFormat) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        state = request.app[STATE]
        try:
            api_request = fmt.parse_request(await _read_json(request))
            chosen, _reason = state.scenarios.pick(request.headers.get(HEADER), api_request.model)
        except RequestError as exc:
            return _error(fmt, exc.status, exc.message, type=exc.type, param=exc.param, code=exc.code)
        except ScenarioNotFound as exc:
            return _error(fmt, 404, str(exc), code="scenario_not_found")
        scenario = state.scenarios.next_step(chosen)
        if scenario.first_byte:
            clock = state.clock
            await clock.sleep_until(clock.now() + scenario.first_byte * state.time_scale)
        if scenario.status is not None:
            return _status_response(fmt, scenario)
        context = StreamContext(
            id=f"chatcmpl-mockllm-{next(state.ids)}",
            created=int(state.clock.wall()),
            model=scenario.model or api_request.model,
        )
        if api_request.stream:
            return await _stream(request, state, fmt, scenario, api_request, context)
        return await _whole(request, state, fmt, scenario, api_request, context)

    return handle


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

    def __init__(self, scenario: Scenario, *, default_type: str) -> None:
        super().__init__(status=200)
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


async def _stream(
    request: web.Request,
    state: ServerState,
    fmt: WireFormat,
    scenario: Scenario,
    api_request: ApiRequest,
    context: StreamContext,
) -> web.StreamResponse:
    response = StreamingResponse(scenario, default_type=fmt.content_type)
    if scenario.wire.framing == "content-length":
        # The body is deterministic (and finite: the loader refuses a forever stall here), so
        # encoding it once without waiting gives its length.
        encoder = fmt.stream_encoder(scenario, api_request, context)
        steps = build_timeline(scenario, time_scale=state.time_scale)
        response.content_length = sum(len(encoder.encode(step.event)) for step in steps)
    await response.prepare(request)
    outcome = Outcome()
    try:
        await play(
            build_timeline(scenario, time_scale=state.time_scale),
            fmt.stream_encoder(scenario, api_request, context),
            ResponseSink(request, response),
            state.clock,
            coalesce=scenario.wire.flush == "due",
            outcome=outcome,
        )
    except Exception:  # a bug: the headers are sent, so all we can do is log and drop the line
        log.exception("mockllm: stream of scenario %r failed", scenario.name)
        if request.transport is not None:
            request.transport.close()
    return response


async def _whole(
    request: web.Request,
    state: ServerState,
    fmt: WireFormat,
    scenario: Scenario,
    api_request: ApiRequest,
    context: StreamContext,
) -> web.StreamResponse:
    """A non-streaming response: the whole reply after the scenario's total time.

    Faults keep their meaning where one exists without a stream: stalls add time, ``error_event``
    becomes an HTTP 500 with that error, ``fin``/``mid-event``/``reset`` drop the connection
    without a response, ``truncate`` returns the text so far with ``finish_reason: length``, and
    ``stall: forever`` never answers. Byte-level faults (malformed lines, splits) do not apply.
    """
    text: list[str] = []
    finish = scenario.finish_reason
    end: StreamError | Hang | Close | None = None
    deadline = 0.0
    for step in build_timeline(scenario, time_scale=state.time_scale, streaming=False):
        deadline = step.deadline
        event = step.event
        if isinstance(event, Token):
            text.append(event.text)
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
    if isinstance(end, Hang):
        await ResponseSink(request, web.StreamResponse()).hang()
    if isinstance(end, StreamError):
        return _error(fmt, 500, end.message, type=end.type, code=end.code)
    if isinstance(end, Close) and end.mode != "eof":
        await ResponseSink(request, web.StreamResponse()).close(end.mode)
        return web.Response(status=500)  # never reaches the client: its connection is gone
    body = fmt.response_body(api_request, context, "".join(text), finish, len(text))
    return web.json_response(body, dumps=_dumps)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)
