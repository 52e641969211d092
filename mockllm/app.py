"""The aiohttp application: its routes and the handlers that read a request and pick a scenario.

Endpoints:
- One ``POST`` endpoint per wire format (``/v1/chat/completions``, ``/v1/completions``,
  ``/v1/responses``, ``/v1/messages``, ``/api/chat``, ``/api/generate``, Gemini's
  ``/v1beta/models/{model}:streamGenerateContent`` and the rest of :attr:`WireFormat.routes`): a
  scenario, streamed or whole, in that API's format; the formats' ``utilities`` (a token count); the
  embeddings endpoints (``/v1/embeddings``, ``/api/embed``, …) answer with vectors
  (:mod:`mockllm.embeddings`).
- ``GET /v1/stream``: a scenario for ``EventSource``, with event ids and resume (or, with
  ``resume=0``, as written).
- ``GET /v1/models``: the loaded scenarios, as models.
- ``GET /healthz``: 200 once the server is ready; ``GET /metrics``: Prometheus' text format.
- ``GET /``: the playground page.
- ``/_mockllm/...``: the control API (:mod:`mockllm.control`), unless turned off.

Every request passes the guard of :mod:`mockllm.guards` (call log, JSON errors, CORS, API key);
what is sent once a scenario is chosen is :mod:`mockllm.replies`; the state is :mod:`mockllm.state`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from aiohttp import web

from . import embeddings
from .clock import Clock, LoopClock
from .errors import NoScenarioMatched, ScenarioNotFound
from .formats import FORMATS, ApiRequest, RequestError, Route, WireFormat
from .formats.embeddings import EmbeddingsFormat
from .guards import cors_headers, error_response, guard, worker_header
from .logs import brief_client_errors
from .match import Seen
from .metrics import CONTENT_TYPE
from .replies import Reply, begin, read_json, reported, stream, whole
from .scenario import Scenario
from .selection import HEADER, ScenarioSet
from .state import CALL, STATE, Handler, Options, ServerState
from .template import rendered

__all__ = ["STATE", "Options", "ServerState", "create_app"]


def create_app(
    scenarios: Sequence[Scenario],
    *,
    clock: Clock | None = None,
    time_scale: float = 1.0,
    options: Options | None = None,
) -> web.Application:
    """An application serving ``scenarios`` (the first is the default)."""
    options = options or Options()
    brief_client_errors()
    app = web.Application(middlewares=[guard], client_max_size=options.max_body)
    state = ServerState(ScenarioSet(scenarios), clock or LoopClock(), time_scale, options=options)
    app[STATE] = state
    for fmt in FORMATS.values():
        for route in fmt.all_routes():
            app.router.add_post(route, _completion_handler(fmt))
        for route, answer in fmt.utilities.items():
            app.router.add_post(route, _utility_handler(fmt, answer))
    app.router.add_get("/v1/models", _models)
    app.router.add_get("/v1/stream", _event_source)
    app.router.add_get("/", _playground)
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/metrics", _metrics)
    if options.control:
        from .control import add_routes

        add_routes(app)
    if options.config.get("workers", 1) > 1:
        app.on_response_prepare.append(worker_header)
    if options.cors:
        app.on_response_prepare.append(cors_headers)

    if options.upstream is not None:
        upstream = options.upstream

        async def stopping(app: web.Application) -> None:
            upstream.stopping = True

        async def close_upstream(app: web.Application) -> None:
            await upstream.close()

        app.on_shutdown.append(stopping)
        app.on_cleanup.append(close_upstream)

    async def set_epoch(app: web.Application) -> None:
        state.epoch = state.clock.now()

    app.on_startup.append(set_epoch)
    return app


async def _models(request: web.Request) -> web.Response:
    names = request.app[STATE].scenarios.names
    data = [{"id": name, "object": "model", "created": 0, "owned_by": "mockllm"} for name in names]
    return web.json_response({"object": "list", "data": data})


async def _healthz(request: web.Request) -> web.Response:
    scenarios = len(request.app[STATE].scenarios.names)
    return web.json_response({"status": "ok", "scenarios": scenarios, "pid": os.getpid()})


async def _metrics(request: web.Request) -> web.Response:
    """Prometheus' text format (:mod:`mockllm.metrics`)."""
    body = request.app[STATE].metrics.render()
    return web.Response(body=body.encode(), headers={"Content-Type": CONTENT_TYPE})


async def _playground(request: web.Request) -> web.Response:
    """The playground page: a static file from the package (never a path from the request)."""
    from importlib import resources

    page = resources.files("mockllm").joinpath("data/playground/index.html").read_bytes()
    return web.Response(body=page, content_type="text/html", charset="utf-8")


#: An event id as this server sends them (ASCII digits, so ``int()`` cannot fail or take long).
_EVENT_ID = re.compile(r"[0-9]{1,18}")


async def _event_source(request: web.Request) -> web.StreamResponse:
    """``GET /v1/stream?scenario=NAME``: the scenario as OpenAI chat chunks that ``new
    EventSource(url)`` can read, with an ``id:`` on every event. A reconnect carrying
    ``Last-Event-ID: N`` resumes after event N, at once (:mod:`mockllm.resume`); one after the
    last event gets 204, which tells an EventSource to stop reconnecting. With ``resume=0`` the
    scenario is served as written (ids only if its ``wire`` says so), from the start every time:
    a server without resume, as most LLM gateways are."""
    state = request.app[STATE]
    fmt = FORMATS["openai-chat"]
    call = request[CALL]
    call.format = fmt.name
    name = request.query.get("scenario")
    resumable = request.query.get("resume", "1")
    if resumable not in ("0", "1"):
        message = f"resume must be 1 (ids and resume, the default) or 0 (neither); got {resumable[:40]!r}."
        return error_response(fmt, 400, message, param="resume", code="invalid_resume")
    last = request.headers.get("Last-Event-ID", "").strip() if resumable == "1" else ""
    if last and not _EVENT_ID.fullmatch(last):
        message = f"Last-Event-ID must be an event id this stream sent, a decimal number (got {last[:40]!r})."
        return error_response(fmt, 400, message, param="Last-Event-ID", code="invalid_last_event_id")
    try:
        chosen = state.scenarios.pick(name, strict=state.strict).scenario
        call.reason = "header" if name else "default"
    except NoScenarioMatched as exc:
        return error_response(fmt, 404, str(exc), code="no_scenario_matched")
    except ScenarioNotFound as exc:
        return error_response(fmt, 404, str(exc), code="scenario_not_found")
    call.stream = True
    scenario = await begin(request, fmt, chosen, call)
    if isinstance(scenario, web.Response):
        return scenario
    if resumable == "1":
        scenario = replace(scenario, wire=replace(scenario.wire, event_ids=True))
    api_request = reported(ApiRequest(model=scenario.name, stream=True, prompt_tokens=0), scenario)
    reply = Reply.build(request, fmt, scenario, api_request, call)
    return await stream(reply, last_event_id=int(last) if last else None)


def _completion_handler(fmt: WireFormat) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        state = request.app[STATE]
        call = request[CALL]
        call.format = fmt.name
        try:
            body = await read_json(request)
            call.body = await request.read()  # the bytes read_json parsed (aiohttp keeps them)
            api_request = fmt.parse_request(body, route_of(request))
            call.conversation = api_request.conversation
            seen = Seen(api_request.conversation, fmt.name, request.headers, body)
            upstream = state.options.upstream
            strict = state.strict or upstream is not None  # no default: the upstream answers
            choice = state.scenarios.pick(request.headers.get(HEADER), seen, strict=strict)
        except RequestError as exc:
            return error_response(fmt, exc.status, exc.message, type=exc.type, param=exc.param, code=exc.code)
        except NoScenarioMatched as exc:
            if upstream is not None:
                call.reason = "upstream"
                return await upstream.forward(request)
            return error_response(fmt, 404, str(exc), code="no_scenario_matched")
        except ScenarioNotFound as exc:
            return error_response(fmt, 404, str(exc), code="scenario_not_found")
        call.reason, call.why, call.stream = choice.reason, choice.why, api_request.stream
        replies = not isinstance(fmt, EmbeddingsFormat)
        tokens = api_request.prompt_tokens
        scenario = await begin(request, fmt, choice.scenario, call, prompt_tokens=tokens, replies=replies)
        if isinstance(scenario, web.Response):
            return scenario
        api_request = reported(api_request, scenario)
        if isinstance(fmt, EmbeddingsFormat):  # not a stream: vectors (mockllm.embeddings)
            return await embeddings.answer(request, fmt, scenario, api_request, call)
        if scenario.template:
            values = {"last_user": seen.conversation.last_user or "", "model": api_request.model}
            if choice.scenario.match is not None:
                values |= choice.scenario.match.groups(seen)
            scenario = rendered(scenario, values)
        reply = Reply.build(request, fmt, scenario, api_request, call)
        # This frame lives as long as the stream: the parsed body goes now (Call.json parses
        # the bytes again if asked), so a held stream does not keep it as objects.
        del body, seen
        # A transcript is the recorded body, whole or streamed: it is sent as it was.
        return await (stream(reply) if api_request.stream or scenario.transcript else whole(reply))

    return handle


def route_of(request: web.Request) -> Route:
    """The path's placeholders, the query (first value of each) and the path of ``request``."""
    query: dict[str, str] = {}
    for key, value in request.query.items():
        query.setdefault(key, value)
    return Route(dict(request.match_info), query, request.path)


def _utility_handler(fmt: WireFormat, answer: Callable[[Any, Route], dict[str, Any]]) -> Handler:
    """An endpoint of ``fmt`` that answers from the body alone (:attr:`WireFormat.utilities`)."""

    async def handle(request: web.Request) -> web.StreamResponse:
        request[CALL].format = fmt.name
        try:
            body = await read_json(request)
            return web.json_response(answer(body, route_of(request)))
        except RequestError as exc:
            return error_response(fmt, exc.status, exc.message, type=exc.type, param=exc.param, code=exc.code)

    return handle
