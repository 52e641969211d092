"""OpenAI Responses: ``POST /v1/responses``.

Stream (https://platform.openai.com/docs/api-reference/responses-streaming): typed events, each
``event: <type>`` plus ``data`` whose ``type`` matches, each with a growing ``sequence_number``:
``response.created``, ``response.in_progress``; for the text, ``response.output_item.added``,
``response.content_part.added``, ``response.output_text.delta``…, ``response.output_text.done``,
``response.content_part.done``, ``response.output_item.done``; for each tool call an output item
with ``response.function_call_arguments.delta``… and ``.done``; then ``response.completed`` (or
``response.incomplete`` for ``finish_reason: length``). No ``[DONE]``. An in-stream error is an
``error`` event, which the SDK yields as an event rather than raising.
"""

from __future__ import annotations

from typing import Any

from ..conversation import Conversation, Message, text_of, tool_names
from ..encoder import EventEncoder, Payloads, dumps
from ..events import Done, Finish, Payload, StreamError, Token, ToolCallEnd, ToolCallStart
from ..scenario import Scenario
from ..sse import SSEFramer
from . import NO_ROUTE, ApiRequest, Route, StreamContext, WholeReply, register, tool_call_id
from .fields import json_object, optional, required, stream_flag
from .openai_chat import OpenAIChat


def _usage(prompt_tokens: int, output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": prompt_tokens,
        "input_tokens_details": {"cache_write_tokens": 0, "cached_tokens": 0},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": prompt_tokens + output_tokens,
    }


def _response(
    context: StreamContext, status: str, output: list[dict[str, Any]], usage: dict[str, Any] | None
) -> dict[str, Any]:
    return {
        "id": context.id,
        "object": "response",
        "created_at": context.created,
        "status": status,
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
        "instructions": None,
        "max_output_tokens": None,
        "model": context.model,
        "output": output,
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None},
        "store": False,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": usage,
        "metadata": {},
    }


def _message_item(item_id: str, text: str, status: str) -> dict[str, Any]:
    content = [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]
    return {
        "id": item_id,
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": content if status == "completed" else [],
    }


def _call_item(tool: int, call_id: str | None, name: str, arguments: str, status: str) -> dict[str, Any]:
    return {
        "id": tool_call_id("fc", tool),
        "type": "function_call",
        "status": status,
        "arguments": arguments,
        "call_id": call_id or tool_call_id("call", tool),
        "name": name,
    }


class ResponsesEncoder(EventEncoder):
    def __init__(self, scenario: Scenario, request: ApiRequest, context: StreamContext) -> None:
        super().__init__(SSEFramer(scenario.wire))
        self.context = context
        self.prompt_tokens = request.prompt_tokens
        self.sequence = 0
        self.started = False
        self.output: list[dict[str, Any]] = []  # finished output items
        self.text: list[str] | None = None  # the open message item's text so far

    def _event(self, name: str, data: dict[str, Any]) -> tuple[str, bytes]:
        payload = {"type": name, **data, "sequence_number": self.sequence}
        self.sequence += 1
        return name, dumps(payload).encode()

    def _open(self) -> Payloads:
        if self.started:
            return []
        self.started = True
        response = _response(self.context, "in_progress", [], None)
        return [
            self._event("response.created", {"response": response}),
            self._event("response.in_progress", {"response": response}),
        ]

    @property
    def _message_id(self) -> str:
        return f"msg_mockllm_{len(self.output)}"

    def _close_text(self) -> Payloads:
        if self.text is None:
            return []
        text, self.text = "".join(self.text), None
        where = {"item_id": self._message_id, "output_index": len(self.output), "content_index": 0}
        part = {"type": "output_text", "text": text, "annotations": []}
        item = _message_item(self._message_id, text, "completed")
        self.output.append(item)
        return [
            self._event("response.output_text.done", {**where, "text": text, "logprobs": []}),
            self._event("response.content_part.done", {**where, "part": part}),
            self._event("response.output_item.done", {"output_index": len(self.output) - 1, "item": item}),
        ]

    def payloads(self, event: Payload) -> Payloads:
        match event:
            case Token(text=text, tool=None):
                out = self._open()
                where = {"item_id": self._message_id, "output_index": len(self.output), "content_index": 0}
                if self.text is None:
                    self.text = []
                    item = _message_item(self._message_id, "", "in_progress")
                    part = {"type": "output_text", "text": "", "annotations": []}
                    out += [
                        self._event(
                            "response.output_item.added", {"output_index": len(self.output), "item": item}
                        ),
                        self._event("response.content_part.added", {**where, "part": part}),
                    ]
                self.text.append(text)
                return [
                    *out,
                    self._event("response.output_text.delta", {**where, "delta": text, "logprobs": []}),
                ]
            case Token(text=text, tool=tool):
                where = {"item_id": tool_call_id("fc", tool or 0), "output_index": len(self.output)}
                return [self._event("response.function_call_arguments.delta", {**where, "delta": text})]
            case ToolCallStart(tool=tool, id=id_, name=name):
                item = _call_item(tool, id_, name, "", "in_progress")
                return [
                    *self._open(),
                    *self._close_text(),
                    self._event(
                        "response.output_item.added", {"output_index": len(self.output), "item": item}
                    ),
                ]
            case ToolCallEnd(tool=tool, id=id_, name=name, arguments=arguments):
                item = _call_item(tool, id_, name, arguments, "completed")
                where = {"item_id": item["id"], "output_index": len(self.output)}
                self.output.append(item)
                return [
                    self._event(
                        "response.function_call_arguments.done",
                        {**where, "name": name, "arguments": arguments},
                    ),
                    self._event(
                        "response.output_item.done", {"output_index": where["output_index"], "item": item}
                    ),
                ]
            case Finish(reason=reason, completion_tokens=tokens):
                out = [*self._open(), *self._close_text()]
                status = "incomplete" if reason == "length" else "completed"
                response = _response(self.context, status, self.output, _usage(self.prompt_tokens, tokens))
                return [*out, self._event(f"response.{status}", {"response": response})]
            case Done():
                return []
            case StreamError(message=message, code=code):
                return [self._event("error", {"code": code, "message": message, "param": None})]
        raise TypeError(f"unexpected event {event!r}")  # pragma: no cover


def _read_item(item: dict[str, Any], system: list[str], history: list[Message]) -> None:
    """One ``input`` item into the normalised history: messages by role, a ``function_call`` as
    an assistant's tool call (the calls of one turn share one assistant message), a
    ``function_call_output`` as a tool result."""
    kind = item.get("type", "message")
    if kind == "function_call":
        name = str(item["name"]) if isinstance(item.get("name"), str) else ""
        last = history[-1] if history else None
        if last is not None and last.role == "assistant":
            history[-1] = Message("assistant", last.text, (*last.tool_calls, name))
        else:
            history.append(Message("assistant", "", (name,)))
    elif kind == "function_call_output":
        history.append(Message("tool", text_of(item.get("output"))))
    elif kind == "message":
        role, text = item.get("role"), text_of(item.get("content"))
        if role in ("system", "developer"):
            system.append(text)
        elif role in ("user", "assistant"):
            history.append(Message(role, text))


class OpenAIResponses(OpenAIChat):
    """Shares chat's error shape and defaults; differs in the request and the events."""

    name = "openai-responses"
    path = "/v1/responses"
    prefixes = (path,)
    id_prefix = "resp_mockllm_"

    def parse_request(self, body: Any, route: Route = NO_ROUTE) -> ApiRequest:
        body = json_object(body)
        model = required(body, "model", str, "a string")
        given = required(body, "input", str | list, "a string or an array")
        system = [optional(body, "instructions", str, "a string", "")]
        history: list[Message] = []
        for item in [{"role": "user", "content": given}] if isinstance(given, str) else given:
            if isinstance(item, dict):
                _read_item(item, system, history)
        instructions = "\n".join(filter(None, system))
        tools = tool_names(body.get("tools"))
        conversation = Conversation(model, stream_flag(body), instructions, tuple(history), tools)
        return ApiRequest.of(conversation)

    def stream_encoder(
        self, scenario: Scenario, request: ApiRequest, context: StreamContext
    ) -> ResponsesEncoder:
        return ResponsesEncoder(scenario, request, context)

    def response_body(self, request: ApiRequest, context: StreamContext, reply: WholeReply) -> dict[str, Any]:
        output = [_message_item("msg_mockllm_0", reply.text, "completed")] if reply.text else []
        output += [
            _call_item(index, call.id, call.name, call.arguments, "completed")
            for index, call in enumerate(reply.tool_calls)
        ]
        status = "incomplete" if reply.finish_reason == "length" else "completed"
        return _response(context, status, output, _usage(request.prompt_tokens, reply.completion_tokens))


register(OpenAIResponses())
