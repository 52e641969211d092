"""The OpenAI chat encoder, as literal wire bytes."""

from __future__ import annotations

from mockllm.events import Done, Finish, Malformed, StreamError, Token
from mockllm.formats import ApiRequest, StreamContext, WholeReply
from mockllm.formats.openai_chat import OpenAIChat, OpenAIChatEncoder

from .conftest import make_scenario

CONTEXT = StreamContext(id="chatcmpl-1", created=1700000000, model="gpt-x")
HEAD = (
    b'{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-x",'
    b'"service_tier":"default","system_fingerprint":"fp_mockllm",'
)
COMPACT_HEAD = b'{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-x","system_fingerprint":null,'
ROLE = (
    b"data: " + HEAD + b'"choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},'
    b'"logprobs":null,"finish_reason":null}]}\n\n'
)


def encoder(include_usage: bool = False, **wire: str) -> OpenAIChatEncoder:
    request = ApiRequest("gpt-x", True, 9, {"include_usage": include_usage})
    return OpenAIChatEncoder(make_scenario(reply="ab", wire=wire), request, CONTEXT)


def test_the_role_comes_in_a_chunk_of_its_own_before_the_first_text() -> None:
    assert encoder().encode(Token(0, "日", first=True)) == ROLE + (
        b"data: "
        + HEAD
        + '"choices":[{"index":0,"delta":{"content":"日"},"logprobs":null,"finish_reason":null}]}\n\n'.encode()
    )


def test_compact_chunks_put_the_role_on_the_first_text() -> None:
    enc = encoder(chunks="compact")
    assert enc.encode(Token(0, "日", first=True)) == (
        b"data: "
        + COMPACT_HEAD
        + '"choices":[{"index":0,"delta":{"role":"assistant","content":"日"},'
        '"logprobs":null,"finish_reason":null}]}\n\n'.encode()
    )
    assert enc.encode(Finish("length", 0, first=True)) == (
        b"data: " + COMPACT_HEAD + b'"choices":[{"index":0,"delta":{"role":"assistant","content":""},'
        b'"logprobs":null,"finish_reason":"length"}]}\n\n'
    )


def test_later_tokens_escape_json() -> None:
    assert encoder().encode(Token(1, 'a"\n\\')) == (
        b"data: " + HEAD + b'"choices":[{"index":0,"delta":{"content":"a\\"\\n\\\\"},'
        b'"logprobs":null,"finish_reason":null}]}\n\n'
    )


def test_finish_done_and_error() -> None:
    enc = encoder()
    assert enc.encode(Finish("stop", 2)) == (
        b"data: " + HEAD + b'"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}\n\n'
    )
    assert enc.encode(Finish("length", 0, first=True)) == ROLE + (
        b"data: " + HEAD + b'"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"length"}]}\n\n'
    )
    assert enc.encode(Done()) == b"data: [DONE]\n\n"
    assert enc.encode(StreamError("boom", "server_error", None)) == (
        b'data: {"error":{"message":"boom","type":"server_error","param":null,"code":null}}\n\n'
    )


def test_include_usage_adds_null_usage_and_a_usage_chunk() -> None:
    enc = encoder(include_usage=True)
    role, text, _ = enc.encode(Token(0, "a", first=True)).split(b"\n\n")
    assert role.endswith(b'"refusal":null},"logprobs":null,"finish_reason":null}],"usage":null}')
    assert text.endswith(b'"finish_reason":null}],"usage":null}')
    finish, usage, _ = enc.encode(Finish("stop", 2)).split(b"\n\n")
    assert finish.endswith(b'"finish_reason":"stop"}],"usage":null}')
    assert usage == (
        b"data: " + HEAD + b'"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11,'
        b'"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":'
        b'{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}}'
    )


def test_malformed_lines_imitate_the_next_chunk() -> None:
    enc = encoder()
    real = enc.encode(Token(1, "b"))[len(b"data: ") : -2]
    assert enc.encode(Malformed("invalid-json", Token(1, "b"))) == b"data: " + real[:-1] + b",}\n\n"
    assert enc.encode(Malformed("missing-prefix", Token(1, "b"))) == real + b"\n\n"
    assert (
        enc.encode(Malformed("truncated-json", Token(1, "b"))) == b"data: " + real[: len(real) // 2] + b"\n\n"
    )
    assert enc.encode(Malformed("bad-utf8", Token(1, "b"))) == (
        b"data: "
        + HEAD
        + b'"choices":[{"index":0,"delta":{"content":"\xff\xfe"},"logprobs":null,"finish_reason":null}]}\n\n'
    )


def test_response_body_and_default_errors() -> None:
    fmt = OpenAIChat()
    request = ApiRequest("gpt-x", False, 4)
    body = fmt.response_body(request, CONTEXT, WholeReply("hi", "stop", 2))
    assert body["choices"][0]["message"]["content"] == "hi"
    # with the breakdowns the real API's whole bodies carry (the SDK's CompletionUsage types)
    assert body["usage"] == {
        "prompt_tokens": 4,
        "completion_tokens": 2,
        "total_tokens": 6,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }
    assert fmt.default_error(429) == (
        "Rate limit reached for requests. Please try again later.",
        "requests",
        "rate_limit_exceeded",
    )
    assert fmt.default_error(599) == ("HTTP 599.", "server_error", None)
    assert fmt.default_error(418) == ("HTTP 418.", "invalid_request_error", None)


def test_prompt_tokens_rule() -> None:
    parsed = OpenAIChat().parse_request(
        {
            "model": "m",
            "messages": [
                {"role": "system", "content": "abcde"},
                {"role": "user", "content": [{"type": "text", "text": "fgh"}]},
            ],
        }
    )
    assert parsed.prompt_tokens == 2  # 8 characters / 4
