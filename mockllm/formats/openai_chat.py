"""OpenAI Chat Completions: ``POST /v1/chat/completions``.

Stream shape (https://platform.openai.com/docs/api-reference/chat-streaming): one ``data:`` line of
``chat.completion.chunk`` JSON per token, no ``event:`` field, the same ``id``/``created``/``model``/
``service_tier``/``system_fingerprint`` on every chunk, a first chunk of its own with
``{"role": "assistant", "content": "", "refusal": null}`` (sent with the first token, so a fault
``at: 0`` still comes before any body byte), ``logprobs: null`` on every choice, a finish chunk
with an empty delta and the ``finish_reason``, a usage chunk with ``choices: []`` when
``stream_options.include_usage`` is set (then every other chunk carries ``"usage": null``), then
``data: [DONE]``. ``wire.chunks: compact`` is the shorter shape older mockllm sent: the role on the
first content chunk (every token exactly one event), ``system_fingerprint: null``, no
``service_tier``.

Deliberate divergences from the real API:
- Request fields mockllm does not interpret are accepted and ignored. The real API rejects unknown
  fields, but a mock that rejected a field newer than itself would fail users' tests for the wrong
  reason.
"""

from __future__ import annotations

from typing import Any

from ..conversation import Conversation, chat_history, tool_names
from ..encoder import EventEncoder, Payloads, dumps, json_string
from ..events import Done, Finish, Payload, StreamError, Token, ToolCallEnd, ToolCallStart
from ..scenario import Scenario
from ..sse import SSEFramer
from . import (
    NO_ROUTE,
    ApiRequest,
    RequestError,
    Route,
    StreamContext,
    WholeReply,
    WireFormat,
    register,
    tool_call_id,
)
from .fields import optional, required

_DEFAULT_ERRORS: dict[int, tuple[str, str, str | None]] = {
    400: ("Bad request.", "invalid_request_error", None),
    401: ("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"),
    403: ("You are not allowed to access this resource.", "invalid_request_error", None),
    404: (
        "The model does not exist or you do not have access to it.",
        "invalid_request_error",
        "model_not_found",
    ),
    408: ("Request timed out.", "timeout", None),
    409: ("Conflict.", "invalid_request_error", None),
    429: ("Rate limit reached for requests. Please try again later.", "requests", "rate_limit_exceeded"),
    500: ("The server had an error while processing your request. Sorry about that!", "server_error", None),
    502: ("Bad gateway.", "server_error", None),
    503: ("The server is overloaded or not ready yet.", "server_error", None),
    504: ("Gateway timeout.", "server_error", None),
}


#: What the real API puts on every chunk beside the id, time and model (``wire.chunks: full``).
_FULL_FIELDS = {"service_tier": "default", "system_fingerprint": "fp_mockllm"}


class OpenAIChatEncoder(EventEncoder):
    """Chunks are built from JSON prefixes and suffixes encoded once per stream; per token only the
    token's text is escaped.

    The prefixes are built at the stream's first payload, not with the encoder: a stream held
    before its first token (a stall, a hang) never pays for them, and a thousand such streams
    would keep 2.6 KB of them each (``python -m bench.memory``).

    Tool calls stream as ``delta.tool_calls`` fragments keyed by ``index``: the first carries
    ``id``, ``type`` and ``function.name`` with empty ``arguments``, the later ones only argument
    text. Nothing is repeated, since the SDK's accumulator concatenates every string field.
    """

    def __init__(self, scenario: Scenario, request: ApiRequest, context: StreamContext) -> None:
        super().__init__(SSEFramer(scenario.wire))
        self.include_usage = bool(request.options.get("include_usage"))
        self.prompt_tokens = request.prompt_tokens
        self.full = scenario.wire.chunks == "full"
        self.context = context
        self._built = False

    def _build(self) -> None:
        """The stream's prefixes and suffixes, and its text tokens' frame."""
        context = self.context
        fields: dict[str, Any] = {
            "id": context.id,
            "object": "chat.completion.chunk",
            "created": context.created,
            "model": context.model,
        }
        fields.update(_FULL_FIELDS if self.full else {"system_fingerprint": None})
        head = dumps(fields)[:-1]
        self._head = head
        self._usage_null = ',"usage":null' if self.include_usage else ""
        choice = head + ',"choices":[{"index":0,"delta":{'
        self._choice = choice.encode()
        self._content = (choice + '"content":').encode()
        self._content_end = (
            '},"logprobs":null,"finish_reason":null' + self.choice_extra + "}]" + self._usage_null + "}"
        ).encode()
        # The real API opens with a chunk of its own carrying the role; the compact shape puts
        # the role on the first content chunk, so every token is exactly one event.
        self._role = self._choice + b'"role":"assistant","content":"","refusal":null' + self._content_end
        self._role_content = (choice + '"role":"assistant","content":').encode()
        self._built = True
        frame = self.data_frame()
        if frame is not None:  # text tokens: one join (see EventEncoder.encode)
            before, after = frame
            first = before + self._role + after + before + self._content if self.full else None
            opening = b"".join(before + data + after for _, data in self.opening())
            self.frame_text(
                (
                    opening + (first or before + self._role_content),
                    before + self._content,
                    self._content_end + after,
                )
            )

    #: JSON members every choice object ends with (Azure's ``content_filter_results``).
    choice_extra = ""

    def opening(self) -> Payloads:
        """Events sent before the first event of the reply (Azure's prompt filter chunk)."""
        return []

    def finish_extra(self, filtered: tuple[str, str] | None) -> str:
        """JSON members the finish chunk's choice ends with."""
        return ""

    def _delta(self, delta: dict[str, Any]) -> bytes:
        return self._choice + dumps(delta)[1:-1].encode() + self._content_end

    def payloads(self, event: Payload) -> Payloads:
        if not self._built:
            self._build()
        match event:
            case Token(text=text, first=first, tool=None):
                if first and self.full:
                    return [
                        *self.opening(),
                        (None, self._role),
                        (None, self._content + json_string(text) + self._content_end),
                    ]
                prefix = self._role_content if first else self._content
                out = self.opening() if first else []
                out.append((None, prefix + json_string(text) + self._content_end))
                return out
            case Token(text=text, tool=tool):
                fragment = {"index": tool, "function": {"arguments": text}}
                return [(None, self._delta({"tool_calls": [fragment]}))]
            case ToolCallStart(tool=tool, id=id_, name=name, first=first):
                call = {
                    "index": tool,
                    "id": id_ or tool_call_id("call", tool),
                    "type": "function",
                    "function": {"name": name, "arguments": ""},
                }
                opening: dict[str, Any] = {"role": "assistant", "content": None} if first else {}
                opening["tool_calls"] = [call]
                if first and self.full:
                    opening["refusal"] = None
                return [*(self.opening() if first else []), (None, self._delta(opening))]
            case ToolCallEnd():
                return []
            case Finish(reason=reason, completion_tokens=tokens, first=first, filtered=filtered):
                delta = '{"role":"assistant","content":""}' if first and not self.full else "{}"
                finish = (
                    f'{self._head},"choices":[{{"index":0,"delta":{delta},"logprobs":null,'
                    f'"finish_reason":{dumps(reason)}{self.finish_extra(filtered)}}}]{self._usage_null}}}'
                )
                out = self.opening() if first else []
                if first and self.full:
                    out.append((None, self._role))
                out.append((None, finish.encode()))
                if self.include_usage:
                    usage = dumps(usage_of(self.prompt_tokens, tokens, details=self.full))
                    out.append((None, f'{self._head},"choices":[],"usage":{usage}}}'.encode()))
                return out
            case Done():
                return [(None, b"[DONE]")]
            case StreamError():
                return stream_error(event)
        raise TypeError(f"unexpected event {event!r}")  # pragma: no cover


def stream_error(error: StreamError) -> Payloads:
    """OpenAI's in-stream error: ``data: {"error": {...}}``, with no event name unless the fault
    gives one (``event: error``, as some gateways send; the SDKs raise on the ``error`` key alike)."""
    body = {"message": error.message, "type": error.type or "server_error", "param": None, "code": error.code}
    return [(error.event, dumps({"error": body}).encode())]


def usage_of(prompt_tokens: int, completion_tokens: int, *, details: bool = False) -> dict[str, Any]:
    """The usage object; ``details``: with the token breakdowns the real API's stream sends."""
    usage: dict[str, Any] = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }
    if details:
        usage["prompt_tokens_details"] = {"cached_tokens": 0, "audio_tokens": 0}
        usage["completion_tokens_details"] = {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        }
    return usage


class OpenAIChat(WireFormat):
    name = "openai-chat"
    path = "/v1/chat/completions"
    #: Paths under ``/v1/`` that no other format owns (``/v1/models``, ``/v1/stream``, a typo) answer
    #: errors in OpenAI's shape.
    prefixes = ("/v1/",)
    content_type = "text/event-stream"
    id_prefix = "chatcmpl-mockllm-"

    def parse_request(self, body: Any, route: Route = NO_ROUTE) -> ApiRequest:
        if not isinstance(body, dict):
            raise RequestError(400, "The request body must be a JSON object.", code="invalid_type")
        model = required(body, "model", str, "a string")
        messages = required(body, "messages", list, "an array")
        if not messages:
            raise RequestError(
                400,
                "Invalid 'messages': empty array. Expected an array with minimum length 1, "
                "but got an empty array instead.",
                param="messages",
                code="empty_array",
            )
        for index, message in enumerate(messages):
            if not isinstance(message, dict) or not isinstance(message.get("role"), str):
                raise RequestError(
                    400,
                    f"Invalid 'messages[{index}]': expected an object with a 'role'.",
                    param=f"messages[{index}]",
                    code="invalid_type",
                )
        stream = optional(body, "stream", bool, "a boolean", False)
        options = optional(body, "stream_options", dict, "an object", None)
        if options is not None and not stream:
            raise RequestError(
                400,
                "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                param="stream_options",
                code="invalid_value",
            )
        n = optional(body, "n", int, "an integer", 1)
        if n != 1:
            raise RequestError(
                400,
                f"mockllm answers with one choice per request: 'n' must be 1 (got {n}).",
                param="n",
                code="unsupported_value",
            )
        system, history = chat_history(messages)
        conversation = Conversation(model, stream, system, history, tool_names(body.get("tools")))
        return ApiRequest.of(conversation, include_usage=bool((options or {}).get("include_usage")))

    def stream_encoder(self, scenario: Scenario, request: ApiRequest, context: StreamContext) -> EventEncoder:
        return OpenAIChatEncoder(scenario, request, context)

    def response_body(self, request: ApiRequest, context: StreamContext, reply: WholeReply) -> dict[str, Any]:
        message: dict[str, Any] = {
            "role": "assistant",
            "content": reply.text if reply.text or not reply.tool_calls else None,
            "refusal": None,
            "annotations": [],
        }
        if reply.tool_calls:
            message["tool_calls"] = [
                {
                    "id": call.id or tool_call_id("call", index),
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                }
                for index, call in enumerate(reply.tool_calls)
            ]
        return {
            "id": context.id,
            "object": "chat.completion",
            "created": context.created,
            "model": context.model,
            "choices": [
                {"index": 0, "message": message, "logprobs": None, "finish_reason": reply.finish_reason}
            ],
            "usage": usage_of(request.prompt_tokens, reply.completion_tokens, details=True),
            "system_fingerprint": None,
        }

    def error_body(
        self, status: int, message: str, *, type: str, param: str | None, code: str | int | None
    ) -> dict[str, Any]:
        return {"error": {"message": message, "type": type, "param": param, "code": code}}

    def default_error(self, status: int) -> tuple[str, str, str | None]:
        if status in _DEFAULT_ERRORS:
            return _DEFAULT_ERRORS[status]
        kind = "server_error" if status >= 500 else "invalid_request_error"
        return f"HTTP {status}.", kind, None


register(OpenAIChat())
