"""Ollama's native API: ``POST /api/chat`` and ``POST /api/generate``.

Not SSE: newline-delimited JSON (``application/x-ndjson``), one object per token with
``"done": false``, then a last object with ``"done": true``, ``done_reason`` and the counts and
durations (nanoseconds). Streaming is the default; ``"stream": false`` gets one object. Tool calls
arrive whole (``message.tool_calls`` with ``arguments`` as an object), so a scenario's argument
fragments are gathered and sent as one line when the call is complete. An error is
``{"error": "..."}``, as the HTTP body or as a line mid-stream. NDJSON has no keep-alive: a stall's
keep-alive writes blank lines, which strict readers reject (a fault, on purpose).

The counts follow the same rule as the other formats: ``prompt_eval_count`` is the prompt token
estimate, ``eval_count`` the tokens sent; ``eval_duration`` is the scenario's per-token time for
them.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from ..conversation import Conversation, Message, chat_history, tool_names
from ..encoder import EventEncoder, Payloads, dumps
from ..events import Done, Finish, Payload, StreamError, Token, ToolCallEnd, ToolCallStart
from ..ndjson import NDJSONFramer
from ..scenario import Scenario
from . import NO_ROUTE, ApiRequest, RequestError, Route, StreamContext, WholeReply, WireFormat, register

NS = 1_000_000_000
DONE_REASONS = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "stop",
    "function_call": "stop",
    "content_filter": "stop",
}


def _created_at(created: int) -> str:
    return datetime.fromtimestamp(created, UTC).strftime("%Y-%m-%dT%H:%M:%S.000000Z")


def _final(scenario_per_token: float, prompt_tokens: int, tokens: int, reason: str) -> dict[str, Any]:
    eval_duration = int(scenario_per_token * tokens * NS)
    return {
        "done": True,
        "done_reason": DONE_REASONS.get(reason, reason),
        "total_duration": eval_duration + 1_000_000,
        "load_duration": 500_000,
        "prompt_eval_count": prompt_tokens,
        "prompt_eval_duration": 500_000,
        "eval_count": tokens,
        "eval_duration": eval_duration,
    }


class OllamaEncoder(EventEncoder):
    def __init__(
        self, scenario: Scenario, request: ApiRequest, context: StreamContext, *, chat: bool
    ) -> None:
        super().__init__(NDJSONFramer(scenario.wire))
        self.chat = chat
        self.per_token = scenario.timing.per_token
        self.prompt_tokens = request.prompt_tokens
        head = {"model": context.model, "created_at": _created_at(context.created)}
        self._head = dumps(head)[:-1]
        if chat:
            self._text = (self._head + ',"message":{"role":"assistant","content":').encode()
            self._text_end = b'},"done":false}'
        else:
            self._text = (self._head + ',"response":').encode()
            self._text_end = b',"done":false}'

    def payloads(self, event: Payload) -> Payloads:
        match event:
            case Token(text=text, tool=None):
                return [(None, self._text + dumps(text).encode() + self._text_end)]
            case Token() | ToolCallStart() | Done():
                return []
            case ToolCallEnd(name=name, arguments=arguments):
                if not self.chat:
                    return []
                call = {"function": {"name": name, "arguments": json.loads(arguments)}}
                message = {"role": "assistant", "content": "", "tool_calls": [call]}
                return [(None, f'{self._head},"message":{dumps(message)},"done":false}}'.encode())]
            case Finish(reason=reason, completion_tokens=tokens):
                final = dumps(_final(self.per_token, self.prompt_tokens, tokens, reason))[1:-1]
                body = ',"message":{"role":"assistant","content":""},' if self.chat else ',"response":"",'
                return [(None, f"{self._head}{body}{final}}}".encode())]
            case StreamError(message=message):
                return [(None, dumps({"error": message}).encode())]
        raise TypeError(f"unexpected event {event!r}")  # pragma: no cover


class _Ollama(WireFormat):
    content_type = "application/x-ndjson"
    prefixes = ("/api/",)
    id_prefix = "ollama-"
    chat: bool

    def stream_encoder(
        self, scenario: Scenario, request: ApiRequest, context: StreamContext
    ) -> OllamaEncoder:
        return OllamaEncoder(scenario, request, context, chat=self.chat)

    def _parse(self, body: Any, field: str, kind: type) -> tuple[str, Any, bool]:
        if not isinstance(body, dict):
            raise RequestError(400, "invalid request body")
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise RequestError(400, "model is required", param="model")
        value = body.get(field)
        if not isinstance(value, kind):
            raise RequestError(400, f"{field} is required", param=field)
        stream = body.get("stream", True)  # Ollama streams unless told not to
        if not isinstance(stream, bool):
            raise RequestError(400, "stream must be a boolean", param="stream")
        return model, value, stream

    def error_body(
        self, status: int, message: str, *, type: str, param: str | None, code: str | int | None
    ) -> dict[str, Any]:
        return {"error": message}

    def default_error(self, status: int) -> tuple[str, str, str | None]:
        messages = {
            401: "unauthorized",
            404: "model not found",
            429: "too many requests",
            500: "internal server error",
            503: "server busy, please try again later",
        }
        return messages.get(status, f"HTTP {status}"), "error", None

    def _whole(
        self, context: StreamContext, reply: WholeReply, request: ApiRequest, per_token: float = 0.0
    ) -> dict[str, Any]:
        return {
            "model": context.model,
            "created_at": _created_at(context.created),
            **_final(per_token, request.prompt_tokens, reply.completion_tokens, reply.finish_reason),
        }


class OllamaChat(_Ollama):
    name = "ollama-chat"
    path = "/api/chat"
    chat = True

    def parse_request(self, body: Any, route: Route = NO_ROUTE) -> ApiRequest:
        model, messages, stream = self._parse(body, "messages", list)
        system, history = chat_history(messages)
        conversation = Conversation(model, stream, system, history, tool_names(body.get("tools")))
        return ApiRequest.of(conversation)

    def response_body(self, request: ApiRequest, context: StreamContext, reply: WholeReply) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": reply.text}
        if reply.tool_calls:
            message["tool_calls"] = [
                {"function": {"name": c.name, "arguments": json.loads(c.arguments)}} for c in reply.tool_calls
            ]
        whole = self._whole(context, reply, request)
        return {
            "model": whole.pop("model"),
            "created_at": whole.pop("created_at"),
            "message": message,
            **whole,
        }


class OllamaGenerate(_Ollama):
    name = "ollama-generate"
    path = "/api/generate"
    chat = False

    def parse_request(self, body: Any, route: Route = NO_ROUTE) -> ApiRequest:
        model, prompt, stream = self._parse(body, "prompt", str)
        system = body.get("system")
        system = system if isinstance(system, str) else ""
        return ApiRequest.of(Conversation(model, stream, system, (Message("user", prompt),)))

    def response_body(self, request: ApiRequest, context: StreamContext, reply: WholeReply) -> dict[str, Any]:
        whole = self._whole(context, reply, request)
        return {
            "model": whole.pop("model"),
            "created_at": whole.pop("created_at"),
            "response": reply.text,
            "context": [],
            **whole,
        }


register(OllamaChat())
register(OllamaGenerate())
