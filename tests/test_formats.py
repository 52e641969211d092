"""Every wire format's encoder, as literal wire bytes (one stream each, all events at once)."""

from __future__ import annotations

from typing import Any

import pytest

from mockllm.encoder import EventEncoder
from mockllm.events import KeepAlive, StreamError
from mockllm.formats import FORMATS, ApiRequest, RequestError, Route, StreamContext
from mockllm.timeline import build_timeline

from .conftest import make_scenario

CONTEXT = StreamContext(id="X1", created=1700000000, model="m")
TOOL = [{"name": "f", "arguments": {"a": 1}}]


def stream(fmt: str, **scenario: Any) -> bytes:
    built = make_scenario(**scenario)
    encoder = FORMATS[fmt].stream_encoder(built, ApiRequest("m", True, 3), CONTEXT)
    return b"".join(encoder.encode(step.event) for step in build_timeline(built))


def sse(*events: tuple[str | None, str]) -> bytes:
    return b"".join(
        ((f"event: {name}\n" if name else "") + f"data: {data}\n\n").encode() for name, data in events
    )


CHUNK = '{"id":"X1","object":"chat.completion.chunk","created":1700000000,"model":"m","service_tier":"default","system_fingerprint":"fp_mockllm","choices":[{"index":0,"delta":%s,"logprobs":null,"finish_reason":%s}]}'
ROLE = '{"role":"assistant","content":"","refusal":null}'


def test_openai_chat_tool_calls() -> None:
    fragment = '{"tool_calls":[{"index":0,"function":{"arguments":%s}}]}'
    assert stream("openai-chat", reply="H", tool_calls=TOOL) == sse(
        (None, CHUNK % (ROLE, "null")),
        (None, CHUNK % ('{"content":"H"}', "null")),
        (
            None,
            CHUNK
            % (
                '{"tool_calls":[{"index":0,"id":"call_mockllm_0","type":"function","function":{"name":"f","arguments":""}}]}',
                "null",
            ),
        ),
        *[
            (None, CHUNK % (fragment % f, "null"))
            for f in ('"{"', '"\\""', '"a"', '"\\""', '":"', '"1"', '"}"')
        ],
        (None, CHUNK % ("{}", '"tool_calls"')),
        (None, "[DONE]"),
    )


def test_openai_chat_tool_call_alone_opens_with_the_role() -> None:
    first = stream("openai-chat", reply=[], tool_calls=[{"name": "f", "id": "call_x"}]).split(b"\n\n")[0]
    assert (
        first
        == b"data: "
        + (
            CHUNK
            % (
                '{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_x","type":"function","function":{"name":"f","arguments":""}}],"refusal":null}',
                "null",
            )
        ).encode()
    )


def test_openai_completions() -> None:
    chunk = '{"id":"X1","object":"text_completion","created":1700000000,"model":"m","choices":[{"text":%s,"index":0,"logprobs":null,"finish_reason":%s}]}'
    assert stream("openai-completions", reply="Hi") == sse(
        (None, chunk % ('"H"', "null")),
        (None, chunk % ('"i"', "null")),
        (None, chunk % ('""', '"stop"')),
        (None, "[DONE]"),
    )


def test_anthropic_text_then_tool_use() -> None:
    def delta(index: int, kind: str, key: str, value: str) -> tuple[str, str]:
        return (
            "content_block_delta",
            f'{{"type":"content_block_delta","index":{index},"delta":{{"type":"{kind}","{key}":"{value}"}}}}',
        )

    assert stream("anthropic", reply="Hi", tool_calls=[{"name": "f", "arguments": "{}"}]) == sse(
        (
            "message_start",
            '{"type":"message_start","message":{"id":"X1","type":"message","role":"assistant","model":"m","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":3,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1,"service_tier":"standard"}}}',
        ),
        (
            "content_block_start",
            '{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}',
        ),
        ("ping", '{"type": "ping"}'),
        delta(0, "text_delta", "text", "H"),
        delta(0, "text_delta", "text", "i"),
        ("content_block_stop", '{"type":"content_block_stop","index":0}'),
        (
            "content_block_start",
            '{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_mockllm_0","name":"f","input":{}}}',
        ),
        delta(1, "input_json_delta", "partial_json", "{"),
        delta(1, "input_json_delta", "partial_json", "}"),
        ("content_block_stop", '{"type":"content_block_stop","index":1}'),
        (
            "message_delta",
            '{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":4}}',
        ),
        ("message_stop", '{"type":"message_stop"}'),
    )


def test_anthropic_keepalive_and_error_are_its_own_events() -> None:
    encoder = FORMATS["anthropic"].stream_encoder(make_scenario(), ApiRequest("m", True, 1), CONTEXT)
    assert encoder.encode(KeepAlive()) == b'event: ping\ndata: {"type": "ping"}\n\n'
    assert encoder.encode(KeepAlive(": x")) == b": x\n\n"
    assert encoder.encode(StreamError("Overloaded")) == (
        b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n'
    )


def test_openai_responses_text() -> None:
    data = stream("openai-responses", reply="H").decode()
    events = [block.split("\n") for block in data.strip().split("\n\n")]
    assert [e[0] for e in events] == [
        "event: response.created",
        "event: response.in_progress",
        "event: response.output_item.added",
        "event: response.content_part.added",
        "event: response.output_text.delta",
        "event: response.output_text.done",
        "event: response.content_part.done",
        "event: response.output_item.done",
        "event: response.completed",
    ]
    assert events[4][1] == (
        'data: {"type":"response.output_text.delta","item_id":"msg_mockllm_0","output_index":0,'
        '"content_index":0,"delta":"H","logprobs":[],"sequence_number":4}'
    )
    assert events[5][1] == (
        'data: {"type":"response.output_text.done","item_id":"msg_mockllm_0","output_index":0,'
        '"content_index":0,"text":"H","logprobs":[],"sequence_number":5}'
    )
    assert events[-1][1].startswith(
        'data: {"type":"response.completed","response":{"id":"X1","object":"response","created_at":1700000000,"status":"completed",'
    )
    assert events[-1][1].endswith(
        '"usage":{"input_tokens":3,"input_tokens_details":{"cache_write_tokens":0,"cached_tokens":0},"output_tokens":1,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":4},"metadata":{}},"sequence_number":8}'
    )


def test_openai_responses_function_call_and_incomplete() -> None:
    data = stream(
        "openai-responses", reply=[], tool_calls=[{"name": "f", "arguments": "{}"}], finish_reason="length"
    )
    assert (
        sse(
            (
                "response.function_call_arguments.delta",
                '{"type":"response.function_call_arguments.delta","item_id":"fc_mockllm_0","output_index":0,"delta":"{","sequence_number":3}',
            ),
        )
        in data
    )
    assert (
        sse(
            (
                "response.function_call_arguments.done",
                '{"type":"response.function_call_arguments.done","item_id":"fc_mockllm_0","output_index":0,"name":"f","arguments":"{}","sequence_number":5}',
            ),
        )
        in data
    )
    assert b'event: response.incomplete\ndata: {"type":"response.incomplete"' in data
    assert b'"incomplete_details":{"reason":"max_output_tokens"}' in data


def test_ollama_chat_and_generate() -> None:
    head = '{"model":"m","created_at":"2023-11-14T22:13:20.000000Z",'
    final = '"done":true,"done_reason":"stop","total_duration":21000000,"load_duration":500000,"prompt_eval_count":3,"prompt_eval_duration":500000,"eval_count":2,"eval_duration":20000000}\n'
    assert stream(
        "ollama-chat", reply=["H", "i"], timing={"per_token": "10ms"}, tool_calls=[{"name": "f"}]
    ).decode() == (
        head
        + '"message":{"role":"assistant","content":"H"},"done":false}\n'
        + head
        + '"message":{"role":"assistant","content":"i"},"done":false}\n'
        + head
        + '"message":{"role":"assistant","content":"","tool_calls":[{"function":{"name":"f","arguments":{}}}]},"done":false}\n'
        + head
        + '"message":{"role":"assistant","content":""},'
        + final.replace(
            '"eval_count":2,"eval_duration":20000000', '"eval_count":4,"eval_duration":40000000'
        ).replace("21000000", "41000000")
    )
    assert stream("ollama-generate", reply="Hi", timing={"per_token": "10ms"}).decode() == (
        head
        + '"response":"H","done":false}\n'
        + head
        + '"response":"i","done":false}\n'
        + head
        + '"response":"",'
        + final
    )


def test_ollama_keepalive_is_a_blank_line_and_errors_are_lines() -> None:
    encoder = FORMATS["ollama-chat"].stream_encoder(make_scenario(), ApiRequest("m", True, 1), CONTEXT)
    assert encoder.encode(KeepAlive()) == b"\n"
    assert encoder.encode(StreamError("boom")) == b'{"error":"boom"}\n'


@pytest.mark.parametrize(
    ("fmt", "body", "message"),
    [
        ("anthropic", {"model": "m", "messages": []}, "max_tokens: Field required"),
        (
            "anthropic",
            {"model": "m", "max_tokens": "9", "messages": []},
            "max_tokens: Input should be an integer",
        ),
        (
            "anthropic",
            {"model": "m", "max_tokens": 9, "messages": [{"role": "system"}]},
            "messages.0.role: Input should be 'user' or 'assistant'",
        ),
        ("openai-responses", {"model": "m"}, "Missing required parameter: 'input'."),
        ("openai-completions", {"model": "m"}, "Missing required parameter: 'prompt'."),
        ("ollama-chat", {"messages": []}, "model is required"),
        ("ollama-generate", {"model": "m"}, "prompt is required"),
    ],
)
def test_request_errors(fmt: str, body: dict[str, Any], message: str) -> None:
    with pytest.raises(RequestError) as caught:
        FORMATS[fmt].parse_request(body)
    assert caught.value.message == message


def test_error_shapes() -> None:
    assert FORMATS["anthropic"].error_body(529, "Overloaded", type="server_error", param=None, code=None) == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
    }
    assert FORMATS["anthropic"].default_error(429)[1] == "rate_limit_error"
    assert FORMATS["ollama-chat"].error_body(404, "model not found", type="x", param=None, code=None) == {
        "error": "model not found"
    }


def test_prompt_tokens_rule_is_shared() -> None:
    counts = {
        "openai-chat": {"model": "m", "messages": [{"role": "user", "content": "12345678"}]},
        "anthropic": {
            "model": "m",
            "max_tokens": 5,
            "system": "1234",
            "messages": [{"role": "user", "content": [{"type": "text", "text": "5678"}]}],
        },
        "openai-responses": {"model": "m", "input": "12345678"},
        "openai-completions": {"model": "m", "prompt": "12345678"},
        "ollama-chat": {"model": "m", "messages": [{"role": "user", "content": "12345678"}]},
        "ollama-generate": {"model": "m", "prompt": "12345678"},
    }
    assert {
        fmt: FORMATS[fmt].parse_request(body).prompt_tokens for fmt, body in counts.items()
    } == dict.fromkeys(counts, 2)


@pytest.mark.parametrize("fmt", ["openai-chat", "anthropic"])
@pytest.mark.parametrize(
    "wire",
    [
        {},
        {"line_ending": "crlf"},
        {"no_space": True},
        {"event_ids": True},
        {"line_ending": "cr", "bom": True},
    ],
    ids=["default", "crlf", "no_space", "event_ids", "cr_bom"],
)
def test_the_one_join_text_token_is_the_general_encoding(
    fmt: str, wire: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Text tokens skip the general path (payloads, dumps, framing) for a per-stream head and tail
    around the escaped text; the bytes must be the same, whatever the wire options."""
    texts = ["plain", 'quote " and \\ backslash', "line\nbreak\ttab", "字", "🙂", "\u2028", "\x00", " "]
    scenario: dict[str, Any] = {"reply": texts, "wire": wire, "tool_calls": TOOL}
    fast = stream(fmt, **scenario)
    monkeypatch.setattr(EventEncoder, "data_frame", lambda self, name=None: None)
    assert fast == stream(fmt, **scenario)
    assert "🙂".encode() in fast


def test_serving_reads_a_routes_placeholders_as_the_router_does() -> None:
    from mockllm.formats import _route_regex, serving

    assert serving("/v1/chat/completions") == (FORMATS["openai-chat"], Route({}, path="/v1/chat/completions"))
    path = "/v1/models/gemini-2.5-flash:generateContent"
    assert serving(path) == (FORMATS["gemini"], Route({"model": "gemini-2.5-flash"}, path=path))
    assert serving("/v1/chat/completions/x") is None
    regex = _route_regex("/v1beta/models/{model}:streamGenerateContent")
    assert (
        regex.fullmatch("/v1beta/models/gemini-2.0-flash:streamGenerateContent")["model"]
        == "gemini-2.0-flash"
    )
    assert regex.fullmatch("/v1beta/models/a/b:streamGenerateContent") is None  # one segment, as aiohttp
    assert regex.fullmatch("/v1beta/models/x.streamGenerateContent") is None  # literal text is literal


def test_bad_crc_in_a_text_framing_is_the_event_with_its_last_brace_flipped() -> None:
    chat = stream("openai-chat", reply="H", faults=[{"at": 0, "malformed": "bad-crc", "replace": True}])
    assert chat.split(b"\n\n")[0] == b"data: " + (CHUNK % ('{"content":"H"}', "null")).encode()[:-1] + b"|"
    lines = stream("ollama-chat", reply="H", faults=[{"at": 0, "malformed": "bad-crc", "replace": True}])
    damaged = lines.split(b"\n")[0]
    assert damaged.startswith(b'{"model":"m"')
    assert damaged.endswith(b'"done":false|')


def test_the_schema_names_every_format_match_can_ask_for() -> None:
    import json
    from importlib import resources

    schema = json.loads(resources.files("mockllm").joinpath("data/scenario.schema.json").read_text("utf-8"))
    assert sorted(schema["$defs"]["format_name"]["enum"]) == sorted(FORMATS)
