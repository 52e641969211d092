"""Every event each SSE format streams, checked field by field against the official SDKs' own
type definitions (pydantic models generated from the APIs' specs): every required field present
with the right type, and no field the type does not know."""

from __future__ import annotations

import json
from typing import Any

import pytest
from anthropic.types import RawMessageStreamEvent
from openai.types.chat import ChatCompletionChunk
from openai.types.responses import ResponseStreamEvent
from pydantic import BaseModel, TypeAdapter

from mockllm.formats import FORMATS, ApiRequest, StreamContext
from mockllm.timeline import build_timeline

from .conftest import make_scenario

CONTEXT = StreamContext(id="X1", created=1700000000, model="m")
TYPES: dict[str, TypeAdapter[Any]] = {
    "openai-chat": TypeAdapter(ChatCompletionChunk),
    "openai-responses": TypeAdapter(ResponseStreamEvent),
    "anthropic": TypeAdapter(RawMessageStreamEvent),
}
#: Fields the real API sends that this SDK's types leave out: the Responses API's own examples
#: (https://platform.openai.com/docs/api-reference/responses/object) carry ``store``.
UNTYPED = {".response.store"}
#: By event type: OpenAI's current spec requires ``name`` on ``response.function_call_arguments.done``
#: (the Java 4.x and Ruby SDKs generated from it have it; this Python release predates it).
UNTYPED_IN = {"response.function_call_arguments.done": {".name"}}
SCENARIOS = {
    "text-and-tool": {"reply": "Hi", "tool_calls": [{"name": "f", "arguments": {"a": 1}}]},
    "cut-short": {"reply": "Hi", "finish_reason": "length"},
    "tool-only": {"reply": [], "tool_calls": [{"name": "f"}]},
    "empty": {"reply": []},
}


def payloads(fmt: str, **scenario: Any) -> list[dict[str, Any]]:
    built = make_scenario(**scenario)
    encoder = FORMATS[fmt].stream_encoder(built, ApiRequest("m", True, 3, {"include_usage": True}), CONTEXT)
    body = b"".join(encoder.encode(step.event) for step in build_timeline(built)).decode()
    lines = [line[6:] for line in body.splitlines() if line.startswith("data: ") and line != "data: [DONE]"]
    return [json.loads(line) for line in lines]


def unknown(value: Any, where: str = "") -> list[str]:
    """The fields, anywhere in a validated event, that its SDK model does not define (pydantic
    keeps them as extras)."""
    if isinstance(value, BaseModel):
        out = [f"{where}.{name}" for name in value.model_extra or {}]
        for name in type(value).model_fields:
            out += unknown(getattr(value, name), f"{where}.{name}")
        return out
    if isinstance(value, list):
        return [field for index, item in enumerate(value) for field in unknown(item, f"{where}[{index}]")]
    return []


def test_an_unknown_field_is_seen() -> None:
    chunk = payloads("openai-chat", reply="a")[0]
    chunk["choices"][0]["delta"]["bogus"] = 1
    assert unknown(TYPES["openai-chat"].validate_python(chunk)) == [".choices[0].delta.bogus"]


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
@pytest.mark.parametrize("fmt", sorted(TYPES))
def test_every_event_is_what_the_sdk_types_say(fmt: str, scenario: str) -> None:
    events = [event for event in payloads(fmt, **SCENARIOS[scenario]) if event.get("type") != "ping"]
    assert events
    for event in events:
        model = TYPES[fmt].validate_python(event)  # raises on a missing or mistyped field
        assert set(unknown(model)) <= UNTYPED | UNTYPED_IN.get(event.get("type"), set()), (
            f"{event.get('type', 'chunk')}: fields its SDK type does not define"
        )
