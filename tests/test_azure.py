"""Azure OpenAI: literal wire bytes, and the ``openai`` SDK's ``AzureOpenAI`` clients reading the
routes, the content filter, the errors and the keys as they read Azure's."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest

from mockllm.events import Finish
from mockllm.timeline import build_timeline

from .clients import AZURE_API_VERSION
from .conftest import Serve, make_scenario
from .test_formats import sse, stream

SAFE = {
    "hate": {"filtered": False, "severity": "safe"},
    "protected_material_code": {"filtered": False, "detected": False},
    "protected_material_text": {"filtered": False, "detected": False},
    "self_harm": {"filtered": False, "severity": "safe"},
    "sexual": {"filtered": False, "severity": "safe"},
    "violence": {"filtered": False, "severity": "safe"},
}
PROMPT_SAFE = {k: v for k, v in SAFE.items() if not k.startswith("protected")} | {
    "jailbreak": {"filtered": False, "detected": False}
}
OPENING = json.dumps(
    {
        "choices": [],
        "created": 0,
        "id": "",
        "model": "",
        "object": "",
        "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": PROMPT_SAFE}],
    },
    separators=(",", ":"),
)
HEAD = '{"id":"X1","object":"chat.completion.chunk","created":1700000000,"model":"m","service_tier":"default","system_fingerprint":"fp_mockllm","choices":[{"index":0,"delta":%s,"logprobs":null,"finish_reason":%s,"content_filter_results":%s}]}'
ROLE = '{"role":"assistant","content":"","refusal":null}'


def compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def test_azure_chat_stream_bytes() -> None:
    safe = compact(SAFE)
    assert stream("azure-chat", reply=["Hi", "!"]) == sse(
        (None, OPENING),
        (None, HEAD % (ROLE, "null", safe)),
        (None, HEAD % ('{"content":"Hi"}', "null", safe)),
        (None, HEAD % ('{"content":"!"}', "null", safe)),
        (None, HEAD % ("{}", '"stop"', "{}")),
        (None, "[DONE]"),
    )


def test_azure_chat_stream_bytes_with_event_ids_take_the_general_path() -> None:
    """With ids the one-join fast path is off: the opening still comes first, with id 1."""
    data = stream("azure-chat", reply=["Hi"], wire={"event_ids": True})
    assert data.startswith(f"id: 1\ndata: {OPENING}\n\n".encode())
    assert data.count(b"prompt_filter_results") == 1


def test_content_filter_fault_stops_the_reply_with_its_category() -> None:
    scenario = make_scenario(
        reply=["a", "b", "c"], faults=[{"at": 1, "content_filter": "hate", "severity": "medium"}]
    )
    events = [step.event for step in build_timeline(scenario)]
    assert [e for e in events if isinstance(e, Finish)] == [
        Finish("content_filter", 1, filtered=("hate", "medium"))
    ]
    data = stream(
        "azure-chat",
        reply=["a", "b", "c"],
        faults=[{"at": 1, "content_filter": "hate", "severity": "medium"}],
    )
    assert b'"content":"b"' not in data
    filtered = compact(SAFE | {"hate": {"filtered": True, "severity": "medium"}})
    assert (HEAD % ("{}", '"content_filter"', filtered)).encode() in data
    # every format says it in its own terms
    assert b'"finish_reason":"content_filter"' in stream(
        "openai-chat", reply=["a", "b"], faults=[{"at": 1, "content_filter": "violence"}]
    )
    assert b'"stop_reason":"refusal"' in stream(
        "anthropic", reply=["a", "b"], faults=[{"at": 1, "content_filter": "violence"}]
    )


def test_content_filter_at_end_and_at_0() -> None:
    at_end = stream("openai-chat", reply=["a", "b"], faults=[{"at": "end", "content_filter": "sexual"}])
    assert b'"content":"b"' in at_end
    assert b'"finish_reason":"content_filter"' in at_end
    at_0 = stream("openai-chat", reply=["a", "b"], faults=[{"at": 0, "content_filter": "sexual"}])
    assert b'"content":"a"' not in at_0
    assert b'"finish_reason":"content_filter"' in at_0


def azure(server: Any, **kwargs: Any) -> openai.AzureOpenAI:
    options: dict[str, Any] = {"api_key": "x", "api_version": AZURE_API_VERSION, "max_retries": 0}
    return openai.AzureOpenAI(azure_endpoint=server.url, **(options | kwargs))


def test_the_deployment_selects_like_model_and_the_sdk_reads_the_filter(serve: Serve) -> None:
    server = serve(
        {
            "name": "gpt-4o-prod",
            "reply": ["It ", "is ", "fine."],
            "faults": [{"at": 2, "content_filter": "violence"}],
        },
        {"name": "other", "reply": "no"},
    )
    client = azure(server, azure_deployment="gpt-4o-prod")
    chunks = list(
        client.chat.completions.create(
            model="ignored", messages=[{"role": "user", "content": "hi"}], stream=True
        )
    )
    assert chunks[0].choices == []
    assert chunks[0].model_extra is not None
    assert "prompt_filter_results" in chunks[0].model_extra
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "It is "
    last = chunks[-1].choices[0]
    assert last.finish_reason == "content_filter"
    assert last.model_extra is not None
    assert last.model_extra["content_filter_results"]["violence"] == {"filtered": True, "severity": "high"}
    assert server.calls.last.path == "/openai/deployments/gpt-4o-prod/chat/completions"
    assert server.calls.last.scenario == "gpt-4o-prod"
    whole = client.chat.completions.create(model="ignored", messages=[{"role": "user", "content": "hi"}])
    assert whole.choices[0].message.content == "It is "
    assert whole.choices[0].finish_reason == "content_filter"
    assert whole.model_extra is not None
    assert "prompt_filter_results" in whole.model_extra
    client.close()


def test_async_client_and_completions(serve: Serve) -> None:
    import asyncio

    server = serve({"name": "dep", "reply": ["a", "b"]})

    async def run() -> tuple[str, str]:
        client = openai.AsyncAzureOpenAI(
            azure_endpoint=server.url, api_key="x", api_version=AZURE_API_VERSION, max_retries=0
        )
        async with client:
            text = ""
            async for chunk in await client.chat.completions.create(
                model="dep", messages=[{"role": "user", "content": "hi"}], stream=True
            ):
                text += chunk.choices[0].delta.content or "" if chunk.choices else ""
            completion = await client.completions.create(model="dep", prompt="hi")
        return text, completion.choices[0].text

    assert asyncio.run(run()) == ("ab", "ab")
    assert [c.format for c in server.calls] == ["azure-chat", "azure-completions"]


def test_v1_routes_take_the_model_from_the_body(serve: Serve) -> None:
    server = serve({"name": "first", "reply": "1"}, {"name": "gpt-4o", "reply": "v1"})
    client = openai.OpenAI(base_url=f"{server.url}/openai/v1/", api_key="x", max_retries=0)
    reply = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content == "v1"
    assert server.calls.last.format == "azure-chat"
    client.close()


def test_errors_in_azures_shape(serve: Serve) -> None:
    server = serve({"name": "dep", "status": 429, "headers": {"Retry-After": "1"}})
    client = azure(server)
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="dep", messages=[{"role": "user", "content": "hi"}])
    assert caught.value.code == "429"
    assert caught.value.body == {"code": "429", "message": caught.value.body["message"]}  # type: ignore[index]
    # no api-version: Azure's 404, with a hint
    response = httpx.post(f"{server.url}/openai/deployments/dep/chat/completions", json={"messages": []})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "404"
    assert "api-version" in response.json()["error"]["message"]
    # a request the model refuses keeps OpenAI's shape (type, param)
    response = httpx.post(
        f"{server.url}/openai/deployments/dep/chat/completions?api-version=1", json={"messages": []}
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "messages"
    client.close()


def test_api_key_header_and_bearer(serve: Serve) -> None:
    from mockllm.state import Options

    server = serve({"name": "dep", "reply": "ok"}, options=Options(api_key="sekrit"))
    good = azure(server, api_key="sekrit")
    assert (
        good.chat.completions.create(model="dep", messages=[{"role": "user", "content": "hi"}])
        .choices[0]
        .message.content
        == "ok"
    )
    good.close()
    bearer = azure(server, api_key=None, azure_ad_token="sekrit")
    assert (
        bearer.chat.completions.create(model="dep", messages=[{"role": "user", "content": "hi"}])
        .choices[0]
        .message.content
        == "ok"
    )
    bearer.close()
    bad = azure(server, api_key="wrong")
    with pytest.raises(openai.AuthenticationError) as caught:
        bad.chat.completions.create(model="dep", messages=[{"role": "user", "content": "hi"}])
    assert caught.value.code == "401"
    bad.close()


def test_match_format_names_azure_and_bedrock() -> None:
    scenario = make_scenario(match={"format": ["azure-chat", "azure-completions", "bedrock"]})
    assert scenario.match is not None
