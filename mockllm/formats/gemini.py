"""Gemini (Generative Language API): ``POST /v1beta/models/{model}:generateContent`` and
``:streamGenerateContent``, the same under ``/v1/`` (google-genai's default), and ``:countTokens``.

The model is the one in the path; the API key comes as ``x-goog-api-key`` or ``?key=``. The
request body is read by :mod:`mockllm.formats.gemini_request`.

A stream is ``GenerateContentResponse`` chunks: with ``?alt=sse`` (what google-genai always asks
for) one ``data: {...}`` event each, no ``event:`` and no ``[DONE]``; without it a JSON array
streamed element by element (:mod:`mockllm.jsonarray`). A chunk carries one text part
(``candidates[0].content.parts[0].text``, role ``model``), or a ``functionCall`` part: Gemini sends
a call whole, so a scenario's argument fragments are gathered and sent when the call is complete.
The last chunk has an empty text part, the ``finishReason`` (``STOP``; ``MAX_TOKENS`` for
``length``, ``SAFETY`` for ``content_filter``) and the full ``usageMetadata``; the others carry
the prompt's counts only, as Gemini sends them. Every chunk names ``modelVersion`` and
``responseId``.

Errors are Google's ``{"error": {"code": 429, "message": "...", "status": "RESOURCE_EXHAUSTED"}}``,
a 429 with a ``RetryInfo`` detail when the wait is known. A mid-stream error is such an object as a
chunk of its own (google-genai's ``request_streamed`` raises ``ClientError``/``ServerError`` on a
chunk that starts with ``{"error":``), the array closed after it. Google has no keep-alive: a
stall's keep-alive without a ``line`` is an SSE comment, which google-genai does not read as one
(a line without ``data: `` goes to its raw-JSON buffer, and fails to parse).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

from ..encoder import EventEncoder, Payloads, dumps
from ..events import Done, Event, Finish, Payload, StreamError, Token, ToolCallEnd, ToolCallStart
from ..jsonarray import JSONArrayFramer
from ..scenario import Scenario
from ..sse import SSEFramer
from . import NO_ROUTE, ApiRequest, RequestError, Route, StreamContext, WholeReply, WireFormat, register
from .gemini_request import read_conversation

FINISH_REASONS = {
    "stop": "STOP",
    "length": "MAX_TOKENS",
    "tool_calls": "STOP",
    "function_call": "STOP",
    "content_filter": "SAFETY",
}
#: google.rpc.Code names by HTTP status (https://cloud.google.com/apis/design/errors).
STATUSES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
MESSAGES = {
    400: "Request contains an invalid argument.",
    401: "API key not valid. Please pass a valid API key.",
    403: "The caller does not have permission",
    404: "Requested entity was not found.",
    429: "Resource has been exhausted (e.g. check quota).",
    500: "An internal error has occurred. Please retry or report in "
    "https://developers.generativeai.google/guide/troubleshooting",
    503: "The model is overloaded. Please try again later.",
    504: "Deadline expired before operation could complete.",
}
RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"
#: Stands in for a token's text while a chunk's fixed bytes around it are worked out.
_MARK = "\ue001"


def status_name(status: int) -> str:
    return STATUSES.get(status, "INTERNAL" if status >= 500 else "INVALID_ARGUMENT")


def google_error(status: int, message: str, kind: str | None = None) -> dict[str, Any]:
    """Google's error object; ``kind`` a google.rpc status name, else the status's own."""
    name = kind if kind in STATUSES.values() else status_name(status)
    return {"error": {"code": status, "message": message, "status": name}}


def _pretty(value: Any) -> str:
    """An element of the JSON array as Google writes it: indented two spaces, UTF-8 as is."""
    return json.dumps(value, indent=2, ensure_ascii=False)


class GeminiEncoder(EventEncoder):
    def __init__(self, scenario: Scenario, request: ApiRequest, context: StreamContext) -> None:
        self.array = not request.options.get("sse", True)
        super().__init__(JSONArrayFramer(scenario.wire) if self.array else SSEFramer(scenario.wire))
        self._dump = _pretty if self.array else dumps
        self.prompt_tokens = request.prompt_tokens
        self._meta = {"modelVersion": context.model, "responseId": context.id}
        prompt = {"promptTokenCount": self.prompt_tokens, "totalTokenCount": self.prompt_tokens}
        # A text chunk is fixed bytes around its text: worked out once, joined per token.
        chunk = self._dump(self._chunk({"text": _MARK}, usage=prompt))
        head, tail = chunk.split(self._dump(_MARK))
        self._head, self._tail = head.encode(), tail.encode()
        frame = None if self.array else self.data_frame()  # the array's framing is stateful
        if frame is not None:
            self.frame_text((frame[0] + self._head, frame[0] + self._head, self._tail + frame[1]))
        self._prompt_usage = prompt

    def _chunk(
        self, part: dict[str, Any], *, usage: dict[str, Any], finish: str | None = None
    ) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"parts": [part], "role": "model"}}
        if finish is not None:
            candidate["finishReason"] = finish
        candidate["index"] = 0
        return {"candidates": [candidate], "usageMetadata": usage, **self._meta}

    def encode(self, event: Event) -> bytes:
        out = super().encode(event)
        if self.array and isinstance(event, Done | StreamError):
            assert isinstance(self.framer, JSONArrayFramer)
            out += self.framer.close()
        return out

    def payloads(self, event: Payload) -> Payloads:
        match event:
            case Token(text=text, tool=None):
                return [(None, self._head + self._dump(text).encode() + self._tail)]
            case Token() | ToolCallStart() | Done():
                return []
            case ToolCallEnd(id=id_, name=name, arguments=arguments):
                call: dict[str, Any] = {"name": name, "args": json.loads(arguments)}
                if id_ is not None:
                    call["id"] = id_
                chunk = self._chunk({"functionCall": call}, usage=self._prompt_usage)
                return [(None, self._dump(chunk).encode())]
            case Finish(reason=reason, completion_tokens=tokens):
                usage = usage_metadata(self.prompt_tokens, tokens)
                chunk = self._chunk(
                    {"text": ""}, usage=usage, finish=FINISH_REASONS.get(reason, reason.upper())
                )
                return [(None, self._dump(chunk).encode())]
            case StreamError(message=message, type=type_, code=code):
                status = code if isinstance(code, int) and 400 <= code < 600 else 500
                kind = code if isinstance(code, str) and code in STATUSES.values() else type_
                return [(None, self._dump(google_error(status, message, kind)).encode())]
        raise TypeError(f"unexpected event {event!r}")  # pragma: no cover


def usage_metadata(prompt_tokens: int, tokens: int) -> dict[str, Any]:
    return {
        "promptTokenCount": prompt_tokens,
        "candidatesTokenCount": tokens,
        "totalTokenCount": prompt_tokens + tokens,
    }


VERSIONS = ("v1beta", "v1")


def _routes(verb: str) -> tuple[str, ...]:
    return tuple(f"/{version}/models/{{model}}:{verb}" for version in VERSIONS)


def count_tokens(body: Any, route: Route) -> dict[str, Any]:
    """``:countTokens``: the prompt's tokens by the rule every format counts them with."""
    conversation = read_conversation(body, route.params.get("model", ""), False, count=True)
    tokens = conversation.prompt_tokens
    return {"totalTokens": tokens, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": tokens}]}


class GoogleApi:
    """What every Google API route shares: google.rpc errors (``RetryInfo`` on a 429) and its
    keys, ``x-goog-api-key: KEY`` (google-genai) or ``?key=KEY`` (curl examples)."""

    def error_body(
        self, status: int, message: str, *, type: str, param: str | None, code: str | int | None
    ) -> dict[str, Any]:
        return google_error(status, message, type)

    def default_error(self, status: int) -> tuple[str, str, str | None]:
        return MESSAGES.get(status, f"HTTP {status}"), status_name(status), None

    def with_retry_delay(self, body: dict[str, Any], seconds: float) -> dict[str, Any]:
        error = body.get("error")
        if isinstance(error, dict):
            # whole seconds, as Google writes them (and as Retry-After says)
            error["details"] = [{"@type": RETRY_INFO, "retryDelay": f"{math.ceil(seconds)}s"}]
        return body

    def offered_keys(self, headers: Mapping[str, str], query: Mapping[str, str]) -> Iterable[str]:
        yield headers.get("x-goog-api-key", "")
        yield query.get("key", "")


class Gemini(GoogleApi, WireFormat):
    name = "gemini"
    path = "/v1beta/models/{model}:streamGenerateContent"
    routes = _routes("generateContent") + _routes("streamGenerateContent")
    # Errors of any path under /v1beta/ are Google's; under /v1/ only the routes' own (the rest
    # of /v1/ is OpenAI's).
    prefixes = ("/v1beta/",)
    utilities: Mapping[str, Any] = MappingProxyType({route: count_tokens for route in _routes("countTokens")})
    style = "gemini"
    content_type = "text/event-stream"
    id_prefix = "mockllm-gemini-"

    def parse_request(self, body: Any, route: Route = NO_ROUTE) -> ApiRequest:
        stream = route.path.endswith(":streamGenerateContent")
        alt = route.query.get("alt", "json")
        if alt not in ("json", "sse"):
            message = f"alt={alt[:40]} is not served here: alt=sse (SSE) or alt=json (a JSON array)."
            raise RequestError(400, message, param="alt")
        model = route.params.get("model", "")
        conversation = read_conversation(body, model, stream)
        return ApiRequest.of(conversation, sse=alt == "sse")

    def stream_encoder(
        self, scenario: Scenario, request: ApiRequest, context: StreamContext
    ) -> GeminiEncoder:
        return GeminiEncoder(scenario, request, context)

    def stream_content_type(self, request: ApiRequest) -> str:
        return self.content_type if request.options.get("sse", True) else "application/json"

    def response_body(self, request: ApiRequest, context: StreamContext, reply: WholeReply) -> dict[str, Any]:
        parts: list[dict[str, Any]] = [{"text": reply.text}] if reply.text else []
        for call in reply.tool_calls:
            function: dict[str, Any] = {"name": call.name, "args": json.loads(call.arguments)}
            if call.id is not None:
                function["id"] = call.id
            parts.append({"functionCall": function})
        candidate = {
            "content": {"parts": parts or [{"text": ""}], "role": "model"},
            "finishReason": FINISH_REASONS.get(reply.finish_reason, reply.finish_reason.upper()),
            "index": 0,
        }
        return {
            "candidates": [candidate],
            "usageMetadata": usage_metadata(request.prompt_tokens, reply.completion_tokens),
            "modelVersion": context.model,
            "responseId": context.id,
        }

    def offered_keys(self, headers: Mapping[str, str], query: Mapping[str, str]) -> Iterable[str]:
        """Google's keys, or a Bearer token."""
        yield from GoogleApi.offered_keys(self, headers, query)
        yield from WireFormat.offered_keys(self, headers, query)


register(Gemini())
