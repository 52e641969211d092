"""The middlewares and response hooks every request passes through, outermost first.

- :func:`record`: the call log and the access log (every call to the mocked API, not
  ``/healthz`` or the control API); runs the clock's due ticks as each request starts and ends.
- :func:`json_errors`: aiohttp's HTML errors (404, 405, 413) and handler bugs (500) become JSON
  in the API's shape, never an HTML page or a traceback. A bug is logged and kept in
  ``ServerState.errors`` so the pytest fixture can fail the test that caused it.
- :func:`preflight` and :func:`cors_headers` (with ``--cors``): browsers.
- :func:`auth`: ``--api-key`` on the LLM endpoints, ``--control-token`` on the control API.
"""

from __future__ import annotations

import functools
import hmac
import logging
import os
from collections.abc import Mapping
from typing import Any

from aiohttp import hdrs, web

from .calls import REJECTED, Call
from .formats import FORMATS, WireFormat, format_for
from .selection import HEADER
from .state import CALL, STATE, TEST_HEADER, Handler

log = logging.getLogger("mockllm")
access_log = logging.getLogger("mockllm.access")
#: Paths that are not calls to the mocked API, and so are not logged.
UNLOGGED = ("/healthz", "/metrics", "/_mockllm/")


@web.middleware
async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
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
        test=test_of(request),
    )
    state.calls_for(call.test, create=True).append(call)
    state.metrics.started()
    request[CALL] = call
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else "unmatched"
    try:
        response = await handler(request)
    except BaseException:
        call.outcome = "client-disconnected" if call.outcome == "started" else call.outcome
        call.finish(state.clock.now())
        state.metrics.finished(call, route)
        _log_call(call)
        raise
    if call.status is None and call.outcome != "client-disconnected":
        call.status = response.status
        call.response_headers = dict(response.headers)
    if call.outcome == "started":
        call.outcome = REJECTED if response.status >= 400 else "completed"
    call.finish(state.clock.now())
    state.metrics.finished(call, route)
    _log_call(call)
    state.clock.run_due()
    return response


def test_of(request: web.Request) -> str | None:
    """The test a request belongs to: its ``X-Mockllm-Test`` header, or a ``test=`` query
    parameter (an ``EventSource`` cannot send headers); ``None`` if neither (or empty)."""
    return request.headers.get(TEST_HEADER) or request.query.get("test") or None


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


def error_response(
    fmt: WireFormat, status: int, message: str, headers: Mapping[str, str] | None = None, **fields: Any
) -> web.Response:
    """An error in ``fmt``'s shape: its body and its error headers, then ``headers``. A 429 whose
    ``Retry-After`` is a number of seconds says it in the body too where the API does (Gemini)."""
    fields.setdefault("type", "server_error" if status >= 500 else "invalid_request_error")
    fields.setdefault("param", None)
    fields.setdefault("code", None)
    all_headers = {**fmt.error_headers(status, fields["type"]), **(headers or {})}
    body = fmt.error_body(status, message, **fields)
    retry_after = next((v for k, v in all_headers.items() if k.lower() == "retry-after"), "").strip()
    if status == 429 and retry_after.isdigit():
        body = fmt.with_retry_delay(body, float(retry_after))
    return web.json_response(body, status=status, headers=all_headers)


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn aiohttp's HTML errors (unknown path, wrong method, body too large) into JSON in the
    shape of the API that owns the path (:func:`~mockllm.formats.format_for`)."""
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
        return api_error(request.path, exc.status, message)
    except ConnectionError:  # the client left before the response went out: its doing, not a bug
        call = request.get(CALL)
        if call is not None and call.outcome == "started":
            call.outcome = "client-disconnected"
        return web.Response(status=499)  # never reaches anyone; aiohttp drops it quietly
    except Exception as exc:  # a bug in mockllm: answer, log, and keep it for the test to see
        log.exception("mockllm: handler for %s %s failed", request.method, request.path)
        request.app[STATE].errors.append(exc)
        message = f"mockllm internal error: {exc!r}"
        return api_error(request.path, 500, message, code="mockllm_internal_error")


def api_error(path: str, status: int, message: str, code: str | None = None) -> web.Response:
    """An error in the shape of the API that owns ``path``, with its own type for ``status``."""
    fmt = format_for(path)
    _, kind, _ = fmt.default_error(status)
    return error_response(fmt, status, message, type=kind, code=code)


async def worker_header(request: web.Request, response: web.StreamResponse) -> None:
    """With several worker processes, every response says which one answered."""
    response.headers["X-Mockllm-Worker"] = str(os.getpid())


# -- browsers ---------------------------------------------------------------------------------------


async def cors_headers(request: web.Request, response: web.StreamResponse) -> None:
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
async def preflight(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer a CORS preflight (before the API-key check: browsers send no credentials on it)."""
    if request.method == "OPTIONS" and hdrs.ACCESS_CONTROL_REQUEST_METHOD in request.headers:
        headers = {
            hdrs.ACCESS_CONTROL_ALLOW_METHODS: "GET, POST, OPTIONS",
            hdrs.ACCESS_CONTROL_ALLOW_HEADERS: request.headers.get(hdrs.ACCESS_CONTROL_REQUEST_HEADERS, ""),
            hdrs.ACCESS_CONTROL_MAX_AGE: "600",
        }
        return web.Response(status=204, headers=headers)
    return await handler(request)


#: The paths that take the mocked APIs' credentials (``--api-key``): every LLM endpoint.
API_PATHS = frozenset({"/v1/models", "/v1/stream"})


@web.middleware
async def auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    """With ``--api-key``, the LLM endpoints answer a wrong or missing key with a 401 in their
    API's shape (so clients' auth-error handling can be tested); the control API has its own
    token."""
    options = request.app[STATE].options
    path = request.path
    key = options.api_key
    fmt = format_for(path)
    if key is not None and (path in API_PATHS or _served(request)) and not _key_matches(request, fmt, key):
        message, kind, code = fmt.default_error(401)
        return error_response(fmt, 401, message, type=kind, code=code)
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


def api_key(request: web.Request) -> str:
    """The API key a request carries, however its API sends it ("" if none)."""
    scheme, _, bearer = request.headers.get(hdrs.AUTHORIZATION, "").partition(" ")
    if scheme.lower() == "bearer" and bearer:
        return bearer.strip()
    for header in ("x-api-key", "api-key", "x-goog-api-key"):
        if request.headers.get(header):
            return request.headers[header]
    return request.query.get("key", "") if request.path.startswith(("/v1beta/", "/v1/models/")) else ""


def _served(request: web.Request) -> bool:
    """``request`` reached one of the formats' own routes (not a 404, not the control API)."""
    resource = request.match_info.route.resource
    return resource is not None and resource.canonical in _format_routes()


@functools.cache
def _format_routes() -> frozenset[str]:
    return frozenset(route for fmt in FORMATS.values() for route in (*fmt.all_routes(), *fmt.utilities))


def _key_matches(request: web.Request, fmt: WireFormat, key: str) -> bool:
    """The request carries ``key`` as its API would send it (:meth:`WireFormat.offered_keys`:
    ``Authorization: Bearer KEY`` or ``x-api-key: KEY`` for most), or, on ``GET /v1/stream``
    only, ``?api_key=KEY`` (an EventSource cannot set headers). Compared in constant time."""
    offered = list(fmt.offered_keys(request.headers, request.query))
    if request.path == "/v1/stream":
        offered.append(request.query.get("api_key", ""))
    wanted = key.encode()
    return any(hmac.compare_digest(value.encode("utf-8", "surrogateescape"), wanted) for value in offered)
