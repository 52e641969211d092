"""The answer to one embeddings request once its scenario is chosen: vectors, or its faults.

Selection, a ``sequence`` step, ``first_byte``, a scripted ``status``, ``limits`` and
``context_window`` are the completion routes' own (:func:`mockllm.replies.begin`), so a
``status: 429`` scenario is a 429 in each route's error shape. An embeddings response is not a
stream, so a scenario's reply, ``timing`` and ``template`` do not apply; its faults apply as
they do to a non-streaming reply, in the order of their ``at`` (whose token index means nothing
here):

- ``stall: 2s`` adds its time before the response; ``stall: forever`` never answers;
- ``disconnect: fin`` / ``reset``: the connection is closed (FIN / RST) before any response;
  ``disconnect: mid-event``: the headers and half the JSON body, then FIN; ``disconnect:
  truncate``: half the JSON body with a clean end (the client's JSON parser fails);
- ``error_event``: an HTTP 500 with that error, in the route's shape;
- ``malformed`` and ``split`` are ignored, as are ``wire`` options: they are bytes of a stream.

Large requests are worked out in a thread (:data:`THREAD_AT`), so streams playing beside them
keep their pace (:func:`dumps` lets the loop run between two vectors).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import hdrs, web

from .calls import Call
from .faults import Disconnect, ErrorEvent, Fault, Stall
from .formats import ApiRequest
from .formats.embeddings import EmbeddingsFormat, Vector, embed_input
from .guards import error_response
from .replies import header_value
from .scenario import Scenario
from .selection import HEADER
from .sink import ResponseSink
from .state import STATE
from .vectors import dimensions_for, vector

#: Past this many characters of input plus numbers of output, vectors and JSON are made in a thread.
THREAD_AT = 200_000
#: The most numbers one answer holds: the real APIs' largest, 2,048 inputs of 3,072 (a JSON body
#: of ~35 MB); a request for more is a 400.
MAX_NUMBERS = 2048 * 3072


async def answer(
    request: web.Request, fmt: EmbeddingsFormat, scenario: Scenario, api_request: ApiRequest, call: Call
) -> web.StreamResponse:
    """The response to ``api_request``, answered by ``scenario`` (already past :func:`begin`)."""
    state = request.app[STATE]
    delay, end = _faults(scenario.faults)
    if delay:
        clock = state.clock
        await clock.sleep_until(clock.now() + delay * state.time_scale)
    if isinstance(end, Stall):
        call.outcome = "fault:stall-forever"
        await ResponseSink(request, web.StreamResponse()).hang()
    if isinstance(end, ErrorEvent):
        call.outcome = "fault:error_event"
        return error_response(fmt, 500, end.message, type=end.type or "server_error", code=end.code)
    if isinstance(end, Disconnect) and end.mode in ("fin", "reset"):
        call.outcome = f"fault:{end.mode}"
        await ResponseSink(request, web.StreamResponse()).close("fin" if end.mode == "fin" else "reset")
        return web.Response(status=500)  # never reaches the client: its connection is gone

    embed = embed_input(api_request)
    model = scenario.model or api_request.model
    numbers = sum(_sizes(scenario, api_request))
    if numbers > MAX_NUMBERS:
        count = len(embed.texts)
        message = (
            f"{count} vectors of this size are {numbers:,} numbers: mockllm sends at most {MAX_NUMBERS:,}."
        )
        return error_response(fmt, 400, message, param="input")
    size = sum(map(len, embed.texts)) + numbers

    def work() -> bytes:
        vectors = vectors_for(scenario, api_request)
        return dumps(fmt.embeddings_body(api_request, model, vectors)).encode()

    body = await asyncio.to_thread(work) if size > THREAD_AT else work()
    headers = {HEADER: header_value(scenario.name), **dict(scenario.headers)}
    if isinstance(end, Disconnect):  # mid-event or truncate: half the body
        call.outcome = f"fault:{end.mode}"
        response = web.StreamResponse(headers={**headers, hdrs.CONTENT_TYPE: "application/json"})
        call.status = response.status
        call.response_headers = dict(response.headers)
        await response.prepare(request)
        sink = ResponseSink(request, response)
        await sink.write(body[: len(body) // 2])
        call.bytes_sent = len(body) // 2
        await sink.close("eof" if end.mode == "truncate" else "fin")
        return response
    call.bytes_sent = len(body)
    return web.Response(body=body, content_type="application/json", headers=headers)


def vectors_for(scenario: Scenario, api_request: ApiRequest) -> list[Vector]:
    """One vector per input: the scenario's pinned vector for that exact text, else the text's
    own in the size the scenario fixes, else the request asked for, else the model's."""
    pinned = scenario.embeddings
    texts = embed_input(api_request).texts
    return [
        pinned.vectors[text] if pinned is not None and text in pinned.vectors else vector(text, size)
        for text, size in zip(texts, _sizes(scenario, api_request), strict=True)
    ]


def _sizes(scenario: Scenario, api_request: ApiRequest) -> list[int]:
    embed = embed_input(api_request)
    fixed = scenario.embeddings.dimensions if scenario.embeddings is not None else None
    default = dimensions_for(api_request.model)
    return [fixed or asked or default for asked in embed.dimensions]


def _faults(faults: tuple[Fault, ...]) -> tuple[float, Fault | None]:
    """The seconds the scenario's stalls add, and the fault that ends the answer (if any)."""
    delay = 0.0
    for fault in sorted(faults, key=lambda f: float("inf") if f.at is None else f.at):
        if isinstance(fault, Stall):
            if fault.duration is None:
                return delay, fault
            delay += fault.duration
        elif isinstance(fault, Disconnect | ErrorEvent):
            return delay, fault
    return delay, None


def dumps(value: Any) -> str:
    """``json.dumps(value)`` of a body, each vector encoded by a call of its own: one
    call for a whole large body would hold the GIL throughout, and the event loop could not run
    beside the thread making it."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)}: {dumps(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple) and value and isinstance(value[0], dict | list | tuple):
        return "[" + ", ".join(dumps(v) for v in value) + "]"  # a list of vectors or of objects
    return json.dumps(value)
