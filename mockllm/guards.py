"""The guards every request passes, in one middleware (:func:`guard`), and the response hooks.

What :func:`guard` does, outermost first:

- the call log and the access log (every call to the mocked API, not ``/healthz`` or the control
  API); runs the clock's due ticks as each request starts and ends (:func:`start_call`,
  :func:`end_call`);
- JSON errors: aiohttp's HTML errors (404, 405, 413) and handler bugs (500) become JSON in the
  API's shape, never an HTML page or a traceback. A bug is logged and kept in
  ``ServerState.errors`` so the pytest fixture can fail the test that caused it
  (:func:`error_for`);
- with ``--cors``, the preflight (:func:`preflight`; :func:`cors_headers` is a response hook);
- ``--api-key`` on the LLM endpoints, ``--control-token`` on the control API (:func:`refusal`).

One middleware rather than four: every coroutine frame on the await chain of an open stream lives
as long as the stream (~400 B each, and aiohttp adds one of its own when there are any
middlewares), which a thousand held streams pay a thousand times (``python -m bench.memory``).
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
from .state import CALL, STATE, TEST_HEADER, Handler, Options, ServerState

log = logging.getLogger("mockllm")
access_log = logging.getLogger("mockllm.access")
#: Paths that are not calls to the mocked API, and so are not logged.
UNLOGGED = ("/healthz", "/metrics", "/_mockllm/")


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every guard of the module docstring, outermost first, in one coroutine."""
    state = request.app[STATE]
    state.clock.run_due()  # the streams already playing keep their pace through a burst of requests
    call, route = start_call(request, state)
    try:
        try:
            response = refusal(request, state.options) or await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            response = error_for(request, exc)
        except Exception as exc:
            response = error_for(request, exc)
    except BaseException:
        if call is not None:
            call.outcome = "client-disconnected" if call.outcome == "started" else call.outcome
            _ended(call, state, route)
        raise
    if call is not None:
        end_call(call, response, state, route)
    return response


def start_call(request: web.Request, state: ServerState) -> tuple[Call | None, str]:
    """Log a call to the mocked API (None for the paths not logged) and the route it reached; the
    handler fills in what it learns."""
    if request.path.startswith(UNLOGGED):
        return None, ""
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
    return call, resource.canonical if resource is not None else "unmatched"


def end_call(call: Call, response: web.StreamResponse, state: ServerState, route: str) -> None:
    """The call's answer is out: its status, headers and outcome, unless the stream set them."""
    if call.status is None and call.outcome != "client-disconnected":
        call.status = response.status
        call.response_headers = dict(response.headers)
    if call.outcome == "started":
        call.outcome = REJECTED if response.status >= 400 else "completed"
    _ended(call, state, route)
    state.clock.run_due()


def _ended(call: Call, state: ServerState, route: str) -> None:
    call.finish(state.clock.now())
    state.metrics.finished(call, route)
    _log_call(call)


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


def error_for(request: web.Request, exc: Exception) -> web.Response:
    """What an exception from a handler becomes: aiohttp's HTML errors (unknown path, wrong
    method, body too large) in the JSON shape of the API that owns the path
    (:func:`~mockllm.formats.format_for`); a client that left, a quiet 499; a bug, a 500."""
    if isinstance(exc, web.HTTPException):
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
    if isinstance(exc, ConnectionError):  # the client left before the response went out: not a bug
        call = request.get(CALL)
        if call is not None and call.outcome == "started":
            call.outcome = "client-disconnected"
        return web.Response(status=499)  # never reaches anyone; aiohttp drops it quietly
    # a bug in mockllm: answer, log, and keep it for the test to see
    log.error("mockllm: handler for %s %s failed", request.method, request.path, exc_info=exc)
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


def preflight(request: web.Request) -> web.Response | None:
    """The answer to a CORS preflight (before the API-key check: browsers send no credentials on
    it), None for any other request."""
    if request.method == "OPTIONS" and hdrs.ACCESS_CONTROL_REQUEST_METHOD in request.headers:
        headers = {
            hdrs.ACCESS_CONTROL_ALLOW_METHODS: "GET, POST, OPTIONS",
            hdrs.ACCESS_CONTROL_ALLOW_HEADERS: request.headers.get(hdrs.ACCESS_CONTROL_REQUEST_HEADERS, ""),
            hdrs.ACCESS_CONTROL_MAX_AGE: "600",
        }
        return web.Response(status=204, headers=headers)
    return None


#: The paths that take the mocked APIs' credentials (``--api-key``): every LLM endpoint.
API_PATHS = frozenset({"/v1/models", "/v1/stream"})


def refusal(request: web.Request, options: Options) -> web.Response | None:
    """The answer that stops ``request`` before its handler, None to let it through: with
    ``--cors``, a preflight's; with ``--api-key``, the LLM endpoints answer a wrong or missing key
    with a 401 in their API's shape (so clients' auth-error handling can be tested); the control
    API has its own token."""
    if options.cors and (answer := preflight(request)) is not None:
        return answer
    path = request.path
    key = options.api_key
    if key is not None:
        fmt = format_for(path)
        if (path in API_PATHS or _served(request)) and not _key_matches(request, fmt, key):
            message, kind, code = fmt.default_error(401)
            return error_response(fmt, 401, message, type=kind, code=code)
    token = options.control_token
    if (
        token is not None
        and path.startswith("/_mockllm/")
        and request.headers.get(hdrs.AUTHORIZATION) != f"Bearer {token}"
    ):
        return web.json_response(
            {"error": {"message": "The control API needs Authorization: Bearer <control token>."}},
            status=401,
        )
    return None


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
