"""Anthropic Messages: ``POST /v1/messages``.

Stream (https://docs.anthropic.com/en/api/messages-streaming): every event has an ``event:`` name
equal to its data's ``type``: ``message_start``; per content block ``content_block_start``,
``content_block_delta`` (``text_delta``, or ``input_json_delta`` for a tool's input) and
``content_block_stop``; a ``ping`` after the first block starts; ``message_delta`` with the
``stop_reason`` and the cumulative ``output_tokens``; ``message_stop``. No ``[DONE]``.

Its own keep-alive is the ``ping`` event; an in-stream error is ``event: error`` with
``{"type": "error", "error": {"type": "overloaded_error", ...}}``. ``anthropic-version`` and
``x-api-key`` headers are accepted and not checked.
"""

from __future__ import annotations

import json
from typing import Any

from ..conversation import Conversation, Message, text_of, tool_names
from ..encoder import EventEncoder, Payloads, dumps
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

STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
DEFAULT_MESSAGES = {
    400: "Bad request.",
    401: "invalid x-api-key",
    403: "Your API key does not have permission to use the specified resource.",
    404: "The requested resource could not be found.",
    413: "Request exceeds the maximum allowed number of bytes.",
    429: "Number of requests has exceeded your rate limit. Please try again later.",
    500: "Internal server error",
    529: "Overloaded",
}
PING = b'{"type": "ping"}'


class AnthropicEncoder(EventEncoder):
    def __init__(self, scenario: Scenario, request: ApiRequest, context: StreamContext) -> None:
        super().__init__(SSEFramer(scenario.wire))
        self.context = context
        self.prompt_tokens = request.prompt_tokens
        self.started = False
        self.pinged = False
        self.block: str | None = None  # "text" or "tool_use" while a content block is open
        self.blocks = 0
        self._delta_frame = self.data_frame("content_block_delta")

    def natural_keepalive(self) -> bytes:
        return self._frame("ping", PING)

    @staticmethod
    def _event(name: str, data: dict[str, Any]) -> tuple[str, bytes]:
        return name, dumps({"type": name, **data}).encode()

    def _open(self) -> Payloads:
        if self.started:
            return []
        self.started = True
        message: dict[str, Any] = {
            "id": self.context.id,
            "type": "message",
            "role": "assistant",
            "model": self.context.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {
                "input_tokens": self.prompt_tokens,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "output_tokens": 1,
                "service_tier": "standard",
            },
        }
        return [self._event("message_start", {"message": message})]

    def _close_block(self) -> Payloads:
        if self.block is None:
            return []
        self.block = None
        self.frame_text(None)
        self.blocks += 1
        return [self._event("content_block_stop", {"index": self.blocks - 1})]

    def _start_block(self, kind: str, content_block: dict[str, Any]) -> Payloads:
        out = self._close_block()
        self.block = kind
        if kind == "text" and self._delta_frame is not None:  # text tokens: one join while it is open
            head, tail = self._delta_frame
            opening = b'{"type":"content_block_delta","index":%d,"delta":{"type":"text_delta","text":'
            head += opening % self.blocks
            self.frame_text((head, head, b"}}" + tail))
        out.append(self._event("content_block_start", {"index": self.blocks, "content_block": content_block}))
        if not self.pinged:
            self.pinged = True
            out.append(("ping", PING))
        return out

    def payloads(self, event: Payload) -> Payloads:
        match event:
            case Token(text=text, tool=None):
                out = self._open()
                if self.block != "text":
                    out += self._start_block("text", {"type": "text", "text": ""})
                text_delta = {"type": "text_delta", "text": text}
                return [*out, self._event("content_block_delta", {"index": self.blocks, "delta": text_delta})]
            case Token(text=text):
                json_delta = {"type": "input_json_delta", "partial_json": text}
                return [self._event("content_block_delta", {"index": self.blocks, "delta": json_delta})]
            case ToolCallStart(tool=tool, id=id_, name=name):
                block = {
                    "type": "tool_use",
                    "id": id_ or tool_call_id("toolu", tool),
                    "name": name,
                    "input": {},
                }
                return self._open() + self._start_block("tool_use", block)
            case ToolCallEnd():
                return self._close_block()
            case Finish(reason=reason, completion_tokens=tokens):
                stop = {"stop_reason": STOP_REASONS.get(reason, reason), "stop_sequence": None}
                return [
                    *self._open(),
                    *self._close_block(),
                    self._event("message_delta", {"delta": stop, "usage": {"output_tokens": tokens}}),
                    self._event("message_stop", {}),
                ]
            case Done():
                return []
            case StreamError(message=message, type=type_):
                error = {"type": type_ or "overloaded_error", "message": message}
                return [self._event("error", {"error": error})]
        raise TypeError(f"unexpected event {event!r}")  # pragma: no cover


def _messages(message: dict[str, Any]) -> list[Message]:
    """One Anthropic message as normalised messages: each ``tool_result`` block is a tool
    message of its own (before the turn's text, as the API requires them first); the text blocks
    are the user's or assistant's text; ``tool_use`` blocks are the assistant's tool calls."""
    role, content = message["role"], message.get("content")
    if isinstance(content, str):
        return [Message(role, content)]
    blocks = [block for block in content if isinstance(block, dict)] if isinstance(content, list) else []
    out = [Message("tool", text_of(b.get("content"))) for b in blocks if b.get("type") == "tool_result"]
    text = text_of([b for b in blocks if b.get("type") == "text"])
    calls = tuple(b["name"] for b in blocks if b.get("type") == "tool_use" and isinstance(b.get("name"), str))
    if text or calls or not out:
        out.append(Message(role, text, calls))
    return out


class AnthropicMessages(WireFormat):
    name = "anthropic"
    path = "/v1/messages"
    style = "anthropic"
    prefixes = (path,)  # /v1/messages/count_tokens, /v1/messages/batches: Anthropic's errors
    content_type = "text/event-stream"
    id_prefix = "msg_mockllm_"

    def parse_request(self, body: Any, route: Route = NO_ROUTE) -> ApiRequest:
        if not isinstance(body, dict):
            raise RequestError(400, "The request body must be a JSON object.")
        for key, kind, name in (
            ("model", str, "a string"),
            ("max_tokens", int, "an integer"),
            ("messages", list, "an array"),
        ):
            if key not in body:
                raise RequestError(400, f"{key}: Field required", param=key)
            if not isinstance(body[key], kind) or isinstance(body[key], bool):
                raise RequestError(400, f"{key}: Input should be {name}", param=key)
        for index, message in enumerate(body["messages"]):
            if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
                raise RequestError(
                    400,
                    f"messages.{index}.role: Input should be 'user' or 'assistant'",
                    param=f"messages.{index}.role",
                )
        stream = body.get("stream", False)
        if not isinstance(stream, bool):
            raise RequestError(400, "stream: Input should be a valid boolean", param="stream")
        history = tuple(m for message in body["messages"] for m in _messages(message))
        system = text_of(body.get("system"))
        conversation = Conversation(body["model"], stream, system, history, tool_names(body.get("tools")))
        return ApiRequest.of(conversation)

    def stream_encoder(
        self, scenario: Scenario, request: ApiRequest, context: StreamContext
    ) -> AnthropicEncoder:
        return AnthropicEncoder(scenario, request, context)

    def response_body(self, request: ApiRequest, context: StreamContext, reply: WholeReply) -> dict[str, Any]:
        content: list[dict[str, Any]] = [{"type": "text", "text": reply.text}] if reply.text else []
        content += [
            {
                "type": "tool_use",
                "id": call.id or tool_call_id("toolu", index),
                "name": call.name,
                "input": json.loads(call.arguments),
            }
            for index, call in enumerate(reply.tool_calls)
        ]
        return {
            "id": context.id,
            "type": "message",
            "role": "assistant",
            "model": context.model,
            "content": content,
            "stop_reason": STOP_REASONS.get(reply.finish_reason, reply.finish_reason),
            "stop_sequence": None,
            "usage": {"input_tokens": request.prompt_tokens, "output_tokens": reply.completion_tokens},
        }

    def error_body(
        self, status: int, message: str, *, type: str, param: str | None, code: str | int | None
    ) -> dict[str, Any]:
        if type not in ERROR_TYPES.values():
            type = self.default_error(status)[1]
        return {"type": "error", "error": {"type": type, "message": message}}

    def default_error(self, status: int) -> tuple[str, str, str | None]:
        kind = ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
        return DEFAULT_MESSAGES.get(status, f"HTTP {status}."), kind, None


register(AnthropicMessages())
