"""Reading a recorded response back: the encoders in reverse, one decoder per wire format. Pure.

A recorder holds the reads of a response body: their bytes and when each arrived. A decoder cuts
them into the wire's blocks (SSE: an event, a comment, a blank line, each up to the blank line that
ends it; NDJSON: a line), keeping when each block's first and last byte arrived and how many of
its bytes came in the first of its reads. Then it reads each block as its API means it: a text
token, a tool call's start or an argument fragment, the finish reason, the end sentinel, a
keep-alive, an in-stream error, or (a block the API would not send) a malformed line, kept as its
bytes. Blocks that carry nothing a client keeps (OpenAI's role chunk, Anthropic's block starts and
stops, its first ``ping``) are structure the encoder writes again on replay.

:data:`DECODERS` is keyed by format name; a format without one is recorded as a transcript.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .wireblocks import Block, KeepAlive, Raw, SSEEvent, line_blocks, sse_blocks, sse_event


@dataclass(frozen=True)
class Text:
    """A token of the reply (``tool`` None) or an argument fragment of tool call ``tool``."""

    text: str
    tool: int | None = None


@dataclass(frozen=True)
class ToolStart:
    tool: int
    name: str
    id: str | None = None


@dataclass(frozen=True)
class Error:
    message: str
    type: str | None = None
    code: str | int | None = None
    event: str | None = None


@dataclass(frozen=True)
class Finish:
    reason: str


@dataclass(frozen=True)
class Done:
    """The format's end of stream (``[DONE]``, ``message_stop``, ``done: true``)."""


Item = Text | ToolStart | KeepAlive | Raw | Error | Finish | Done


@dataclass(frozen=True)
class Heard:
    """An item and the block it came in."""

    item: Item
    block: Block


@dataclass
class Decoded:
    """A stream read back: its items in order, the wire options it shows, what the API said of
    itself (model, usage), and the bytes after its last whole block (an event cut off)."""

    items: list[Heard] = field(default_factory=list)
    wire: dict[str, Any] = field(default_factory=dict)
    model: str | None = None
    usage: dict[str, Any] | None = None
    rest: bytes = b""


@dataclass(frozen=True)
class Whole:
    """A non-streaming answer read back."""

    text: str
    finish_reason: str
    tool_calls: tuple[tuple[str, str, str | None], ...] = ()  # (name, arguments JSON, id)
    model: str | None = None
    usage: dict[str, Any] | None = None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


# -- the formats -----------------------------------------------------------------------------------


def _error(error: Any, event: str | None = None) -> Error | None:
    if isinstance(error, str):
        return Error(error)
    if not isinstance(error, dict) or not isinstance(error.get("message"), str):
        return None
    code = error.get("code")
    return Error(
        error["message"],
        error.get("type") if isinstance(error.get("type"), str) else None,
        code if isinstance(code, str | int) and not isinstance(code, bool) else None,
        event,
    )


def decode_openai_chat(reads: Sequence[tuple[float, bytes]]) -> Decoded:
    """OpenAI chat completions chunks (``data: {...}``, ``data: [DONE]``)."""
    out = Decoded()
    blocks, out.rest = sse_blocks(reads, out.wire)
    for number, block in enumerate(blocks):
        event = sse_event(block, out.wire, first=number == 0)
        if not isinstance(event, SSEEvent):
            out.items.append(Heard(event, block))
            continue
        if event.data == "[DONE]":
            out.items.append(Heard(Done(), block))
            continue
        chunk = _json(event.data)
        items = _chat_chunk(chunk, event.name, out) if isinstance(chunk, dict) else None
        if items is None:
            out.items.append(Heard(Raw(block.raw), block))
        else:
            out.items += [Heard(item, block) for item in items]
    return out


def _chat_chunk(chunk: dict[str, Any], name: str | None, out: Decoded) -> list[Item] | None:
    if "error" in chunk:
        error = _error(chunk["error"], name)
        return None if error is None else [error]
    choices = chunk.get("choices")
    if not isinstance(choices, list):
        return None
    if isinstance(chunk.get("model"), str):
        out.model = chunk["model"]
    if isinstance(chunk.get("usage"), dict):
        out.usage = chunk["usage"]
    items: list[Item] = []
    for choice in choices:
        if not isinstance(choice, dict) or choice.get("index", 0) != 0:
            continue
        delta = _dict(choice.get("delta"))
        if isinstance(delta.get("content"), str) and delta["content"]:
            items.append(Text(delta["content"]))
        for call in delta.get("tool_calls") or ():
            if not isinstance(call, dict) or not isinstance(call.get("index"), int):
                return None
            function = _dict(call.get("function"))
            if isinstance(function.get("name"), str):
                items.append(ToolStart(call["index"], function["name"], call.get("id")))
            if isinstance(function.get("arguments"), str) and function["arguments"]:
                items.append(Text(function["arguments"], call["index"]))
        if isinstance(choice.get("finish_reason"), str):
            items.append(Finish(choice["finish_reason"]))
    return items


#: Anthropic's stop reasons in the scenario language (the reverse of the encoder's table).
ANTHROPIC_STOPS = {
    "end_turn": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def decode_anthropic(reads: Sequence[tuple[float, bytes]]) -> Decoded:
    """Anthropic Messages events (``message_start`` … ``message_stop``)."""
    out = Decoded()
    blocks, out.rest = sse_blocks(reads, out.wire)
    tools = 0
    kinds: dict[int, int | None] = {}  # content block index -> tool index (None: text)
    pinged = False  # the ping after the first block starts is the stream's structure, not a keep-alive
    last = None
    for number, block in enumerate(blocks):
        event = sse_event(block, out.wire, first=number == 0)
        if not isinstance(event, SSEEvent):
            out.items.append(Heard(event, block))
            continue
        data = _json(event.data)
        kind = data.get("type") if isinstance(data, dict) else None
        items: list[Item] | None = []
        if not isinstance(data, dict) or kind != event.name:
            items = None
        elif kind == "ping":
            if not pinged and last == "content_block_start":
                pinged = True
            else:
                items = [KeepAlive()]
        elif kind == "message_start":
            message = _dict(data.get("message"))
            out.model = message.get("model") if isinstance(message.get("model"), str) else out.model
            if isinstance(message.get("usage"), dict):  # the input count; the output's comes last
                out.usage = {**(out.usage or {}), **message["usage"]}
        elif kind == "content_block_start":
            content = _dict(data.get("content_block"))
            if content.get("type") == "tool_use" and isinstance(content.get("name"), str):
                kinds[data.get("index", -1)] = tools
                assert items is not None
                items.append(ToolStart(tools, content["name"], content.get("id")))
                tools += 1
            else:
                kinds[data.get("index", -1)] = None
        elif kind == "content_block_delta":
            delta = _dict(data.get("delta"))
            text = delta.get("text", delta.get("partial_json"))
            if isinstance(text, str) and text:
                items = [Text(text, kinds.get(data.get("index", -1)))]
        elif kind == "message_delta":
            delta = _dict(data.get("delta"))
            if isinstance(data.get("usage"), dict):
                out.usage = {**(out.usage or {}), **data["usage"]}
            reason = delta.get("stop_reason")
            if isinstance(reason, str):
                items = [Finish(ANTHROPIC_STOPS.get(reason, reason))]
        elif kind == "message_stop":
            items = [Done()]
        elif kind == "error":
            error = _error(data.get("error"))
            items = None if error is None else [error]
        elif kind != "content_block_stop":
            items = None
        last = kind
        if items is None:
            out.items.append(Heard(Raw(block.raw), block))
        else:
            out.items += [Heard(item, block) for item in items]
    return out


#: Ollama's done reasons in the scenario language.
OLLAMA_REASONS = {"stop": "stop", "length": "length"}


def decode_ollama(reads: Sequence[tuple[float, bytes]]) -> Decoded:
    """Ollama's NDJSON lines (chat's ``message`` or generate's ``response``, then ``done: true``)."""
    out = Decoded()
    blocks, out.rest = line_blocks(reads, out.wire)
    tools = 0
    for block in blocks:
        text = block.raw.strip(b"\r\n")
        if not text:
            out.items.append(Heard(KeepAlive(), block))
            continue
        line = _json(text.decode("utf-8", "replace"))
        items: list[Item] | None = []
        if not isinstance(line, dict):
            items = None
        elif "error" in line:
            error = _error(line["error"])
            items = None if error is None else [error]
        else:
            out.model = line.get("model") if isinstance(line.get("model"), str) else out.model
            message = _dict(line.get("message"))
            content = message.get("content", line.get("response"))
            if isinstance(content, str) and content and not line.get("done"):
                items = [Text(content)]
            for call in message.get("tool_calls") or ():
                function = call.get("function") if isinstance(call, dict) else None
                if not isinstance(function, dict) or not isinstance(function.get("name"), str):
                    items = None
                    break
                arguments = json.dumps(
                    function.get("arguments", {}), ensure_ascii=False, separators=(",", ":")
                )
                assert items is not None
                items += [ToolStart(tools, function["name"]), Text(arguments, tools)]
                tools += 1
            if items is not None and line.get("done") is True:
                reason = line.get("done_reason", "stop")
                items += [Finish(OLLAMA_REASONS.get(reason, str(reason))), Done()]
                out.usage = {k: line[k] for k in ("prompt_eval_count", "eval_count") if k in line}
        if items is None:
            out.items.append(Heard(Raw(block.raw), block))
        else:
            out.items += [Heard(item, block) for item in items]
    return out


def _arguments(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def whole_openai_chat(body: Any) -> Whole | None:
    choice = body.get("choices", [None])[0] if isinstance(body, dict) and body.get("choices") else None
    if not isinstance(choice, dict) or not isinstance(choice.get("message"), dict):
        return None
    message = choice["message"]
    calls = tuple(
        (c["function"]["name"], _arguments(c["function"].get("arguments", "{}")), c.get("id"))
        for c in message.get("tool_calls") or ()
        if isinstance(c, dict)
        and isinstance(c.get("function"), dict)
        and isinstance(c["function"].get("name"), str)
    )
    text = message.get("content") if isinstance(message.get("content"), str) else ""
    return Whole(
        text, str(choice.get("finish_reason") or "stop"), calls, body.get("model"), body.get("usage")
    )


def whole_anthropic(body: Any) -> Whole | None:
    if not isinstance(body, dict) or not isinstance(body.get("content"), list):
        return None
    blocks = [b for b in body["content"] if isinstance(b, dict)]
    text = "".join(b["text"] for b in blocks if b.get("type") == "text" and isinstance(b.get("text"), str))
    calls = tuple(
        (b["name"], _arguments(b.get("input", {})), b.get("id"))
        for b in blocks
        if b.get("type") == "tool_use" and isinstance(b.get("name"), str)
    )
    reason = str(body.get("stop_reason") or "end_turn")
    return Whole(text, ANTHROPIC_STOPS.get(reason, reason), calls, body.get("model"), body.get("usage"))


def whole_ollama(body: Any) -> Whole | None:
    if not isinstance(body, dict):
        return None
    message = _dict(body.get("message"))
    text = message.get("content", body.get("response", ""))
    calls = tuple(
        (c["function"]["name"], _arguments(c["function"].get("arguments", {})), None)
        for c in message.get("tool_calls") or ()
        if isinstance(c, dict)
        and isinstance(c.get("function"), dict)
        and isinstance(c["function"].get("name"), str)
    )
    reason = str(body.get("done_reason") or "stop")
    return Whole(
        text if isinstance(text, str) else "", OLLAMA_REASONS.get(reason, reason), calls, body.get("model")
    )


#: Format name → (stream decoder, whole-body decoder). A format not here is recorded exactly.
DECODERS: dict[
    str, tuple[Callable[[Sequence[tuple[float, bytes]]], Decoded], Callable[[Any], Whole | None]]
] = {
    "openai-chat": (decode_openai_chat, whole_openai_chat),
    "anthropic": (decode_anthropic, whole_anthropic),
    "ollama-chat": (decode_ollama, whole_ollama),
    "ollama-generate": (decode_ollama, whole_ollama),
}
