"""The server end to end, read by the clients users really run: the openai SDK and httpx-sse."""

from __future__ import annotations

import json
import os
from typing import Any

import httpx
import httpx_sse
import openai
import pytest

from mockllm import MockLLMServer

from .conftest import Serve, make_scenario

pytestmark = pytest.mark.functional

MESSAGES = [{"role": "user", "content": "Say hello"}]
CJK_EMOJI = "生成式模型🎉👍🏽 ok"  # 3-byte runes, 4-byte runes, a skin-tone modifier (2 runes)


def sdk(server: MockLLMServer, **kwargs: object) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.openai_base_url, api_key="unused", max_retries=0, **kwargs)  # type: ignore[arg-type]


def post_sse(
    server: MockLLMServer, body: dict[str, object], **headers: str
) -> list[httpx_sse.ServerSentEvent]:
    with (
        httpx.Client(timeout=10) as client,
        httpx_sse.connect_sse(
            client, "POST", f"{server.openai_base_url}/chat/completions", json=body, headers=headers
        ) as source,
    ):
        return list(source.iter_sse())


def test_openai_sync_stream_one_chunk_per_rune(serve: Serve) -> None:
    server = serve({"reply": CJK_EMOJI, "timing": {"per_token": "1ms"}})
    stream = sdk(server).chat.completions.create(model="gpt-x", messages=MESSAGES, stream=True)  # type: ignore[arg-type]
    chunks = list(stream)
    contents = [c.choices[0].delta.content for c in chunks]
    assert contents[1:-1] == list(CJK_EMOJI)
    assert "".join(c or "" for c in contents) == CJK_EMOJI
    # As the real API: the role in a first chunk of its own (content ""); finish_reason only on
    # the last; one id/created/model throughout
    assert contents[0] == ""
    assert [c.choices[0].delta.role for c in chunks] == ["assistant"] + [None] * (len(CJK_EMOJI) + 1)
    assert [c.choices[0].finish_reason for c in chunks] == [None] * (len(CJK_EMOJI) + 1) + ["stop"]
    assert {(c.service_tier, c.system_fingerprint) for c in chunks} == {("default", "fp_mockllm")}
    assert len({(c.id, c.created, c.model) for c in chunks}) == 1
    assert chunks[0].model == "gpt-x"
    assert all(c.object == "chat.completion.chunk" for c in chunks)


async def test_openai_async_stream_with_usage(serve: Serve) -> None:
    server = serve({"reply": "Hi there", "model": "mock-model"})
    client = openai.AsyncOpenAI(base_url=server.openai_base_url, api_key="unused", max_retries=0)
    stream = await client.chat.completions.create(
        model="gpt-x",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},  # type: ignore[arg-type]
    )
    chunks = [chunk async for chunk in stream]
    await client.close()
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hi there"
    usage_chunk = chunks[-1]
    assert usage_chunk.choices == []
    assert usage_chunk.usage is not None
    assert usage_chunk.usage.completion_tokens == len("Hi there")
    assert usage_chunk.usage.prompt_tokens == 3  # "Say hello": 9 characters / 4, rounded up
    assert usage_chunk.usage.total_tokens == 3 + 8
    assert all(c.usage is None for c in chunks[:-1])
    assert chunks[0].model == "mock-model"


def test_httpx_sse_sees_done_last_and_event_stream_headers(serve: Serve) -> None:
    server = serve({"reply": "abc"})
    with (
        httpx.Client() as client,
        httpx_sse.connect_sse(
            client,
            "POST",
            f"{server.openai_base_url}/chat/completions",
            json={"model": "m", "messages": MESSAGES, "stream": True},
        ) as source,
    ):
        assert source.response.headers["content-type"] == "text/event-stream"
        assert source.response.headers["cache-control"] == "no-cache"
        assert source.response.headers["transfer-encoding"] == "chunked"
        events = list(source.iter_sse())
    assert [e.event for e in events] == ["message"] * 6
    assert events[-1].data == "[DONE]"
    payloads = [json.loads(e.data) for e in events[:-1]]
    assert [p["choices"][0]["delta"] for p in payloads] == [
        {"role": "assistant", "content": "", "refusal": None},
        {"content": "a"},
        {"content": "b"},
        {"content": "c"},
        {},
    ]
    assert "usage" not in payloads[0]


def test_done_false_ends_without_sentinel(serve: Serve) -> None:
    server = serve({"reply": "ab", "done": False, "finish_reason": "length"})
    events = post_sse(server, {"model": "m", "messages": MESSAGES, "stream": True})
    assert [json.loads(e.data)["choices"][0]["finish_reason"] for e in events] == [
        None,
        None,
        None,
        "length",
    ]  # role, a, b


def test_non_stream_completion(serve: Serve) -> None:
    server = serve({"reply": CJK_EMOJI, "timing": {"per_token": "1ms"}})
    response = sdk(server).chat.completions.create(model="gpt-x", messages=MESSAGES)  # type: ignore[arg-type]
    assert response.object == "chat.completion"
    assert response.choices[0].message.content == CJK_EMOJI
    assert response.choices[0].message.role == "assistant"
    assert response.choices[0].finish_reason == "stop"
    assert response.usage is not None
    assert response.usage.completion_tokens == len(CJK_EMOJI)


@pytest.mark.parametrize(
    "fault",
    [
        {"at": 1, "split": "utf8"},
        {"at": 1, "split": {"byte": 3}},
        {"at": 1, "stall": "10ms", "mid_event": True},
    ],
    ids=["split-utf8", "split-byte", "stall-mid-event"],
)
def test_a_non_stream_reply_keeps_the_token_a_byte_level_fault_cuts(
    serve: Serve, fault: dict[str, Any]
) -> None:
    server = serve({"reply": "a日b", "faults": [fault]})
    response = sdk(server).chat.completions.create(model="gpt-x", messages=MESSAGES)  # type: ignore[arg-type]
    assert response.choices[0].message.content == "a日b"
    assert response.usage is not None
    assert response.usage.completion_tokens == 3


def test_selection_by_header_then_model_then_default(serve: Serve) -> None:
    server = serve(make_scenario("first", reply="one"), make_scenario("second", reply="two"))
    client = sdk(server)

    def reply(model: str, **headers: str) -> str:
        response = client.chat.completions.create(
            model=model,
            messages=MESSAGES,
            extra_headers=headers,  # type: ignore[arg-type]
        )
        return response.choices[0].message.content or ""

    assert reply("second") == "two"
    assert reply("anything-else") == "one"
    assert reply("second", **{"X-Mockllm-Scenario": "first"}) == "one"
    assert reply("first", **{"X-Mockllm-Scenario": "second"}) == "two"


def test_unknown_scenario_header_is_404_listing_names(serve: Serve) -> None:
    server = serve(make_scenario("first"), make_scenario("second"))
    with pytest.raises(openai.NotFoundError) as caught:
        sdk(server).chat.completions.create(
            model="m",
            messages=MESSAGES,
            extra_headers={"X-Mockllm-Scenario": "nope"},  # type: ignore[arg-type]
        )
    error = caught.value.body
    assert isinstance(error, dict)
    assert error["code"] == "scenario_not_found"
    assert error["message"] == (
        "No scenario named 'nope'. Known scenarios: first, second. Select one with the "
        "X-Mockllm-Scenario header or by using its name as the model; a request that names "
        "neither gets the default, 'first'."
    )


def test_models_lists_scenarios_and_healthz(serve: Serve) -> None:
    server = serve(make_scenario("alpha"), make_scenario("beta"))
    assert [m.id for m in sdk(server).models.list()] == ["alpha", "beta"]
    health = httpx.get(f"{server.url}/healthz")
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "scenarios": 2, "pid": os.getpid()}


@pytest.mark.parametrize(
    ("body", "status", "param", "code", "message"),
    [
        (b"{not json", 400, None, "invalid_json", "We could not parse the JSON body"),
        (b"[1, 2]", 400, None, "invalid_type", "The request body must be a JSON object."),
        (
            b'{"messages": []}',
            400,
            "model",
            "missing_required_parameter",
            "Missing required parameter: 'model'.",
        ),
        (
            b'{"model": "m"}',
            400,
            "messages",
            "missing_required_parameter",
            "Missing required parameter: 'messages'.",
        ),
        (
            b'{"model": "m", "messages": "hi"}',
            400,
            "messages",
            "invalid_type",
            "Invalid type for 'messages': expected an array, but got a string instead.",
        ),
        (
            b'{"model": 5, "messages": []}',
            400,
            "model",
            "invalid_type",
            "Invalid type for 'model': expected a string, but got an integer instead.",
        ),
        (b'{"model": "m", "messages": []}', 400, "messages", "empty_array", "Invalid 'messages'"),
        (
            b'{"model": "m", "messages": [{"content": "x"}]}',
            400,
            "messages[0]",
            "invalid_type",
            "Invalid 'messages[0]': expected an object with a 'role'.",
        ),
        (
            b'{"model": "m", "messages": [{"role": "user"}], "stream": "yes"}',
            400,
            "stream",
            "invalid_type",
            "Invalid type for 'stream': expected a boolean",
        ),
        (
            b'{"model": "m", "messages": [{"role": "user"}], "stream_options": {}}',
            400,
            "stream_options",
            "invalid_value",
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
        ),
        (
            b'{"model": "m", "messages": [{"role": "user"}], "n": 2}',
            400,
            "n",
            "unsupported_value",
            "mockllm answers with one choice per request: 'n' must be 1 (got 2).",
        ),
    ],
)
def test_bad_requests_get_openai_error_bodies(
    serve: Serve, body: bytes, status: int, param: str | None, code: str, message: str
) -> None:
    server = serve()
    response = httpx.post(f"{server.openai_base_url}/chat/completions", content=body)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert error["code"] == code
    assert error["message"].startswith(message)


def test_sdk_raises_bad_request_error(serve: Serve) -> None:
    server = serve()
    with pytest.raises(openai.BadRequestError, match="'n' must be 1"):
        sdk(server).chat.completions.create(model="m", messages=MESSAGES, n=3)  # type: ignore[arg-type]


def test_unknown_path_wrong_method_and_oversized_body_are_json(serve: Serve) -> None:
    server = serve()
    missing = httpx.post(f"{server.url}/v1/nothing-here", json={})
    assert missing.status_code == 404
    assert missing.json()["error"]["message"] == "Invalid URL (POST /v1/nothing-here)"
    wrong = httpx.get(f"{server.openai_base_url}/chat/completions")
    assert wrong.status_code == 405
    assert wrong.json()["error"]["message"] == ("Method GET is not allowed for /v1/chat/completions")
    huge = httpx.post(
        f"{server.openai_base_url}/chat/completions",
        content=b'{"model": "m", "messages": [{"role": "user", "content": "'
        + b"x" * (17 * 1024 * 1024)
        + b'"}]}',
    )
    assert huge.status_code == 413
    assert "too large" in huge.json()["error"]["message"]
    # and the server is still fine afterwards
    assert httpx.get(f"{server.url}/healthz").status_code == 200


def test_client_hanging_up_mid_stream_costs_nothing(serve: Serve) -> None:
    server = serve({"reply": "x" * 200, "timing": {"per_token": "20ms"}})
    with (
        httpx.Client() as client,
        httpx_sse.connect_sse(
            client,
            "POST",
            f"{server.openai_base_url}/chat/completions",
            json={"model": "m", "messages": MESSAGES, "stream": True},
        ) as source,
    ):
        for index, _event in enumerate(source.iter_sse()):
            if index == 3:
                break
    # the server keeps serving: a new complete stream works right away
    events = post_sse(serve({"reply": "ok"}), {"model": "m", "messages": MESSAGES, "stream": True})
    assert events[-1].data == "[DONE]"
    assert httpx.get(f"{server.url}/healthz").status_code == 200
