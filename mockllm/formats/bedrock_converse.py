"""Bedrock's Converse API, the model-neutral half of :mod:`mockllm.formats.bedrock`: the request
(``messages`` of content blocks, ``system`` blocks, ``toolConfig``), the ``ConverseStream``
events, and the ``Converse`` response body.

The shapes are the ``bedrock-runtime`` service model's (botocore ``data/bedrock-runtime/
2023-09-30/service-2.json``): ``ConverseStreamOutput``'s members ``messageStart`` (``role``),
``contentBlockStart`` (``start.toolUse``: ``toolUseId``, ``name``; ``ContentBlockStart`` has no
text member, so a text block starts with its first delta, as the real API streams it),
``contentBlockDelta`` (``delta.text`` or ``delta.toolUse.input``, a fragment of the input's JSON),
``contentBlockStop``, ``messageStop`` (``stopReason``) and ``metadata`` (``usage``:
``inputTokens``, ``outputTokens``, ``totalTokens``; ``metrics.latencyMs``). The real API pads
each payload with a random ``"p"`` field; mockllm does not.
"""

from __future__ import annotations

import json
from typing import Any

from ..conversation import Conversation, Message
from ..encoder import EventEncoder, Payloads, dumps
from ..events import Done, Finish, Payload, StreamError, Token, ToolCallEnd, ToolCallStart
from ..eventstream import EventStreamFramer
from ..scenario import Scenario
from . import ApiRequest, RequestError, StreamContext, WholeReply, tool_call_id
from .bedrock_errors import exception_payload

STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "content_filtered",
}


def latency_ms(scenario: Scenario, tokens: int) -> int:
    """``metrics.latencyMs``: the scenario's timing for ``tokens`` tokens (``first_token``, then
    ``per_token`` for each after the first; stalls not counted), so it is the same every run."""
    timing = scenario.timing
    return round(1000 * (timing.first_token + timing.per_token * max(tokens - 1, 0)))


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "inputTokens": prompt_tokens,
        "outputTokens": completion_tokens,
        "totalTokens": prompt_tokens + completion_tokens,
    }


def invalid(where: str, constraint: str) -> RequestError:
    """A 400 ValidationException worded as AWS's request validation words them."""
    message = f"1 validation error detected: Value at '{where}' failed to satisfy constraint: {constraint}"
    return RequestError(400, message, param=where)


def _text(blocks: list[Any]) -> str:
    return "".join(b["text"] for b in blocks if isinstance(b, dict) and isinstance(b.get("text"), str))


def _result_text(content: Any) -> str:
    """A ``toolResult``'s content blocks as text: ``text`` as is, ``json`` as its JSON."""
    if not isinstance(content, list):
        return ""
    parts = [
        b["text"] if isinstance(b.get("text"), str) else dumps(b["json"])
        for b in content
        if isinstance(b, dict) and ("text" in b or "json" in b)
    ]
    return "".join(parts)


def _messages(index: int, message: Any) -> list[Message]:
    """One Converse message as normalised messages: each ``toolResult`` block a tool message (they
    come first in a user turn), the ``text`` blocks the turn's text, ``toolUse`` blocks the calls."""
    if not isinstance(message, dict):
        raise invalid(f"messages.{index + 1}.member", "Member must be a structure")
    role, content = message.get("role"), message.get("content")
    if role not in ("user", "assistant"):
        raise invalid(
            f"messages.{index + 1}.member.role", "Member must satisfy enum value set: [user, assistant]"
        )
    if not isinstance(content, list):
        raise invalid(f"messages.{index + 1}.member.content", "Member must not be null and must be a list")
    blocks = [b for b in content if isinstance(b, dict)]
    out = [
        Message("tool", _result_text(b["toolResult"].get("content")))
        for b in blocks
        if isinstance(b.get("toolResult"), dict)
    ]
    text = _text(blocks)
    calls = tuple(
        b["toolUse"]["name"]
        for b in blocks
        if isinstance(b.get("toolUse"), dict) and isinstance(b["toolUse"].get("name"), str)
    )
    if text or calls or not out:
        out.append(Message(role, text, calls))
    return out


def parse_converse(body: Any, model: str, stream: bool) -> Conversation:
    """A ``Converse``/``ConverseStream`` body (the model is the path's) as a Conversation."""
    if not isinstance(body, dict):
        raise RequestError(400, "The request body must be a JSON object.")
    messages, system, config = body.get("messages", []), body.get("system", []), body.get("toolConfig")
    if not isinstance(messages, list):
        raise invalid("messages", "Member must be a list")
    if not isinstance(system, list):
        raise invalid("system", "Member must be a list")
    tools: tuple[str, ...] = ()
    if config is not None:
        if not isinstance(config, dict) or not isinstance(config.get("tools"), list):
            raise invalid("toolConfig.tools", "Member must not be null and must be a list")
        specs = [t.get("toolSpec") for t in config["tools"] if isinstance(t, dict)]
        tools = tuple(s["name"] for s in specs if isinstance(s, dict) and isinstance(s.get("name"), str))
    history = tuple(m for index, message in enumerate(messages) for m in _messages(index, message))
    return Conversation(model, stream, _text(system), history, tools)


class ConverseEncoder(EventEncoder):
    """``ConverseStream``: one event-stream message per event (the framer's ``name`` is the
    ``ConverseStreamOutput`` member). No fixed-bytes fast path: each message has its own CRC."""

    def __init__(self, scenario: Scenario, request: ApiRequest, context: StreamContext) -> None:
        super().__init__(EventStreamFramer())
        self.scenario = scenario
        self.prompt_tokens = request.prompt_tokens
        self.started = False
        self.block: str | None = None  # "text" or "toolUse" while a content block is open
        self.blocks = 0

    def _open(self) -> Payloads:
        if self.started:
            return []
        self.started = True
        return [("messageStart", b'{"role":"assistant"}')]

    def _close_block(self) -> Payloads:
        if self.block is None:
            return []
        self.block = None
        self.blocks += 1
        return [("contentBlockStop", b'{"contentBlockIndex":%d}' % (self.blocks - 1))]

    def _delta(self, delta: dict[str, Any]) -> tuple[str, bytes]:
        return "contentBlockDelta", dumps({"delta": delta, "contentBlockIndex": self.blocks}).encode()

    def payloads(self, event: Payload) -> Payloads:
        match event:
            case Token(text=text, tool=None):
                out = self._open()
                if self.block != "text":
                    out += self._close_block()
                    self.block = "text"
                return [*out, self._delta({"text": text})]
            case Token(text=text):
                return [self._delta({"toolUse": {"input": text}})]
            case ToolCallStart(tool=tool, id=id_, name=name):
                out = self._open() + self._close_block()
                self.block = "toolUse"
                start = {"toolUse": {"toolUseId": id_ or tool_call_id("tooluse", tool), "name": name}}
                return [
                    *out,
                    ("contentBlockStart", dumps({"start": start, "contentBlockIndex": self.blocks}).encode()),
                ]
            case ToolCallEnd():
                return self._close_block()
            case Finish(reason=reason, completion_tokens=tokens):
                metadata = {
                    "usage": usage(self.prompt_tokens, tokens),
                    "metrics": {"latencyMs": latency_ms(self.scenario, tokens)},
                }
                return [
                    *self._open(),
                    *self._close_block(),
                    ("messageStop", dumps({"stopReason": STOP_REASONS.get(reason, reason)}).encode()),
                    ("metadata", dumps(metadata).encode()),
                ]
            case Done():
                return []
            case StreamError():
                return [exception_payload(event)]
        raise TypeError(f"unexpected event {event!r}")  # pragma: no cover


def converse_body(request: ApiRequest, reply: WholeReply) -> dict[str, Any]:
    """The ``Converse`` response (``ConverseResponse``: ``output.message``, ``stopReason``,
    ``usage``, ``metrics``; ``latencyMs`` the time the reply took, its stalls included)."""
    content: list[dict[str, Any]] = [{"text": reply.text}] if reply.text else []
    content += [
        {
            "toolUse": {
                "toolUseId": call.id or tool_call_id("tooluse", index),
                "name": call.name,
                "input": json.loads(call.arguments),
            }
        }
        for index, call in enumerate(reply.tool_calls)
    ]
    return {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": STOP_REASONS.get(reply.finish_reason, reply.finish_reason),
        "usage": usage(request.prompt_tokens, reply.completion_tokens),
        "metrics": {"latencyMs": round(reply.duration * 1000)},
    }
