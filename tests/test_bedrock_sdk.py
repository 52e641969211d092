"""Bedrock Runtime read by boto3's ``bedrock-runtime`` client, as users read the real API.

Every shipped scenario through the four operations (the two streams read with botocore's own
event-stream decoder), pinned to what boto3 does with each fault; the agent's tool loop on
Converse; errors as botocore's exceptions; what ``--api-key`` means for a SigV4 client; and the
endpoint boto3 takes from ``AWS_ENDPOINT_URL_BEDROCK_RUNTIME``.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import botocore.config
import botocore.eventstream
import botocore.exceptions
import httpx
import pytest
import urllib3.exceptions

from mockllm import MockLLMServer, load_scenarios
from mockllm.state import Options

from .clients import READ_TIMEOUT, Seen
from .conftest import ROOT, SCENARIOS
from .served import Served, start

pytestmark = pytest.mark.functional

SHIPPED = {s.name: s for s in load_scenarios([SCENARIOS])}
FULL = -1
HI = [{"role": "user", "content": [{"text": "hi"}]}]
INVOKE_BODY = json.dumps(
    {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "hi"}],
    }
)


def client(url: str | None, *, attempts: int = 1, key: str = "mock", **config: Any) -> Any:
    """A bedrock-runtime client with dummy credentials (the signature is never checked)."""
    retries = {"total_max_attempts": attempts} if attempts else {}
    settings = botocore.config.Config(retries=retries, read_timeout=READ_TIMEOUT, **config)  # type: ignore[arg-type]
    return boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        endpoint_url=url,
        aws_access_key_id=key,
        aws_secret_access_key="mock",
        config=settings,
    )


def converse_stream(bedrock: Any, name: str, parts: list[str]) -> None:
    with contextlib.closing(bedrock.converse_stream(modelId=name, messages=HI)["stream"]) as stream:
        for event in stream:
            if "contentBlockDelta" in event:  # as the AWS examples read it
                parts.append(event["contentBlockDelta"]["delta"].get("text", ""))


def invoke_stream(bedrock: Any, name: str, parts: list[str]) -> None:
    response = bedrock.invoke_model_with_response_stream(modelId=name, body=INVOKE_BODY)
    with contextlib.closing(response["body"]) as stream:
        for event in stream:
            chunk = json.loads(event["chunk"]["bytes"])
            if chunk["type"] == "content_block_delta" and chunk["delta"]["type"] == "text_delta":
                parts.append(chunk["delta"]["text"])


def converse(bedrock: Any, name: str, parts: list[str]) -> None:
    content = bedrock.converse(modelId=name, messages=HI)["output"]["message"]["content"]
    parts.extend(block.get("text", "") for block in content)


def invoke(bedrock: Any, name: str, parts: list[str]) -> None:
    body = json.loads(bedrock.invoke_model(modelId=name, body=INVOKE_BODY)["body"].read())
    parts.extend(block.get("text", "") for block in body["content"])


READERS: dict[str, Callable[[Any, str, list[str]], None]] = {
    "converse-stream": converse_stream,
    "invoke-with-response-stream": invoke_stream,
    "converse": converse,
    "invoke": invoke,
}

#: (runes read, or FULL; the exception raised) for both streaming operations.
STREAM: dict[str, tuple[int, type[BaseException] | None]] = {
    "disconnect-truncate": (10, None),  # a clean end without messageStop: no error
    # botocore's EventStream lets urllib3's own errors through, unwrapped
    "disconnect-fin": (10, urllib3.exceptions.ProtocolError),
    "disconnect-mid-event": (10, urllib3.exceptions.ProtocolError),  # half a message, then FIN
    "disconnect-reset": (10, urllib3.exceptions.ProtocolError),
    "flaky-stream": (5, urllib3.exceptions.ProtocolError),
    "stall-forever": (0, urllib3.exceptions.ReadTimeoutError),
    "error-event": (6, botocore.exceptions.EventStreamError),  # a modelStreamErrorException message
    "flaky": (0, botocore.exceptions.ClientError),  # ServiceUnavailableException (one attempt)
    "rate-limited": (0, botocore.exceptions.ClientError),  # ThrottlingException
    "malformed-bad-crc": (3, botocore.eventstream.ChecksumMismatch),
    # JSON where a prelude should be: its first bytes are read as lengths and CRC
    "malformed-missing-prefix": (3, botocore.eventstream.ChecksumMismatch),
    "malformed-raw": (3, botocore.eventstream.ChecksumMismatch),
    # botocore parses a payload that is not JSON as {"message": ...}: the event it yields lacks
    # its members, and the application's lookup fails
    "malformed-invalid-json": (3, KeyError),
    "malformed-truncated-json": (3, KeyError),
    "malformed-not-json": (3, KeyError),
    "malformed-bad-utf8": (3, UnicodeDecodeError),  # botocore decodes the payload strictly
    # no keep-alive on the event stream: the stalls are silent and the replies whole; the SSE
    # wire options do not apply
}
#: The same for the two whole operations (the faults that need a stream do not apply).
WHOLE: dict[str, tuple[int, type[BaseException] | None]] = {
    "disconnect-truncate": (10, None),  # the text so far, stopReason max_tokens
    "disconnect-fin": (0, botocore.exceptions.ConnectionClosedError),
    "disconnect-mid-event": (0, botocore.exceptions.ConnectionClosedError),
    "disconnect-reset": (0, botocore.exceptions.ConnectionClosedError),
    "flaky-stream": (0, botocore.exceptions.ConnectionClosedError),
    "stall-forever": (0, botocore.exceptions.ReadTimeoutError),
    # the body comes when the last rune is due: 1.5 s at this time scale, past the read timeout
    "slow": (0, botocore.exceptions.ReadTimeoutError),
    "error-event": (0, botocore.exceptions.ClientError),  # InternalServerException
    "flaky": (0, botocore.exceptions.ClientError),
    "rate-limited": (0, botocore.exceptions.ClientError),
}
EXPECTED = {
    "converse-stream": STREAM,
    "invoke-with-response-stream": STREAM,
    "converse": WHOLE,
    "invoke": WHOLE,
}
#: The botocore error code of each ClientError above.
CODES = {
    "flaky": "ServiceUnavailableException",
    "rate-limited": "ThrottlingException",
    "error-event": "modelStreamErrorException",
}


@pytest.fixture(scope="module")
def pack() -> Iterator[MockLLMServer]:
    with MockLLMServer(SCENARIOS, time_scale=0.1) as server:
        yield server


@pytest.fixture(scope="module")
def bedrock(pack: MockLLMServer) -> Iterator[Any]:
    bedrock = client(pack.url)
    yield bedrock
    bedrock.close()


def read(bedrock: Any, operation: str, name: str) -> tuple[Seen, BaseException | None]:
    parts: list[str] = []
    try:
        READERS[operation](bedrock, name, parts)
    except Exception as exc:
        return Seen("".join(parts), type(exc)), exc
    return Seen("".join(parts)), None


@pytest.mark.parametrize("operation", list(READERS))
@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_boto3_reads_every_shipped_scenario(
    pack: MockLLMServer, bedrock: Any, operation: str, name: str
) -> None:
    pack.state.scenarios.reset_counters()
    seen, exc = read(bedrock, operation, name)
    runes, error = EXPECTED[operation].get(name, (FULL, None))
    scenario = SHIPPED[name]
    assert seen.text == (scenario.reply_text if runes == FULL else "".join(scenario.tokens[:runes]))
    assert seen.error is error or (
        error is not None and seen.error is not None and issubclass(seen.error, error)
    )
    if isinstance(exc, botocore.exceptions.ClientError):
        code = (
            CODES[name]
            if operation.endswith("stream") or name != "error-event"
            else "InternalServerException"
        )
        assert exc.response["Error"]["Code"] == code
    assert pack.calls.last.format == "bedrock"


def test_default_retries_carry_boto3_through_a_503_and_a_429(pack: MockLLMServer) -> None:
    """botocore's legacy retry mode retries ServiceUnavailableException and ThrottlingException
    (the x-amzn-ErrorType codes), so ``flaky`` reads in full on the third attempt."""
    pack.state.scenarios.reset_counters()
    parts: list[str] = []
    converse_stream(client(pack.url, attempts=0), "flaky", parts)
    assert "".join(parts) == SHIPPED["flaky"].reply_text
    assert [call.status for call in pack.calls][-3:] == [503, 429, 200]


WEATHER = {
    "tools": [
        {
            "toolSpec": {
                "name": "get_weather",
                "inputSchema": {"json": {"type": "object", "properties": {"city": {"type": "string"}}}},
            }
        }
    ]
}


@pytest.mark.parametrize("streamed", [True, False])
def test_the_agent_tool_loop_on_converse(streamed: bool) -> None:
    with MockLLMServer(ROOT / "scenarios" / "agent" / "weather.yaml") as server:
        bedrock = client(server.url)
        messages: list[dict[str, Any]] = [
            {"role": "user", "content": [{"text": "What is the weather in Paris?"}]}
        ]
        turn = ask(bedrock, messages, streamed)
        assert turn["stopReason"] == "tool_use"
        (use,) = [block["toolUse"] for block in turn["content"] if "toolUse" in block]
        assert (use["name"], use["input"]) == ("get_weather", {"city": "Paris"})
        messages += [
            {"role": "assistant", "content": turn["content"]},
            {
                "role": "user",
                "content": [
                    {"toolResult": {"toolUseId": use["toolUseId"], "content": [{"json": {"temp": 18}}]}}
                ],
            },
        ]
        final = ask(bedrock, messages, streamed)
        assert (final["stopReason"], final["content"]) == ("end_turn", [{"text": "It is 18 °C in Paris."}])
        assert [call.scenario for call in server.calls] == ["ask-weather", "answer-weather"]
        assert server.calls.last.conversation.tools == ("get_weather",)


def ask(bedrock: Any, messages: list[dict[str, Any]], streamed: bool) -> dict[str, Any]:
    """One turn: the content blocks and stop reason, gathered from the stream if ``streamed``."""
    if not streamed:
        reply = bedrock.converse(modelId="m", messages=messages, toolConfig=WEATHER)
        return {"content": reply["output"]["message"]["content"], "stopReason": reply["stopReason"]}
    blocks: dict[int, dict[str, Any]] = {}
    stop = ""
    for event in bedrock.converse_stream(modelId="m", messages=messages, toolConfig=WEATHER)["stream"]:
        if "contentBlockStart" in event:
            start = event["contentBlockStart"]
            blocks[start["contentBlockIndex"]] = {"toolUse": {**start["start"]["toolUse"], "input": ""}}
        elif "contentBlockDelta" in event:
            delta = event["contentBlockDelta"]
            block = blocks.setdefault(delta["contentBlockIndex"], {"text": ""})
            if "text" in delta["delta"]:
                block["text"] += delta["delta"]["text"]
            else:
                block["toolUse"]["input"] += delta["delta"]["toolUse"]["input"]
        elif "messageStop" in event:
            stop = event["messageStop"]["stopReason"]
    for block in blocks.values():
        if "toolUse" in block:
            block["toolUse"]["input"] = json.loads(block["toolUse"]["input"])
    return {"content": [blocks[i] for i in sorted(blocks)], "stopReason": stop}


def test_metadata_and_converse_usage() -> None:
    with MockLLMServer([{"name": "m", "reply": "Hello", "timing": {"per_token": "10ms"}}]) as server:
        bedrock = client(server.url)
        events = list(bedrock.converse_stream(modelId="m", messages=HI)["stream"])
        assert events[0] == {"messageStart": {"role": "assistant"}}
        assert events[-2] == {"messageStop": {"stopReason": "end_turn"}}
        assert events[-1]["metadata"] == {
            "usage": {"inputTokens": 1, "outputTokens": 5, "totalTokens": 6},
            "metrics": {"latencyMs": 40},
        }
        whole = bedrock.converse(modelId="m", messages=HI, system=[{"text": "Be brief."}])
        assert whole["usage"] == {"inputTokens": 3, "outputTokens": 5, "totalTokens": 8}
        assert whole["metrics"]["latencyMs"] >= 40
        assert server.calls.last.conversation.system == "Be brief."
        invoked = bedrock.invoke_model_with_response_stream(modelId="m", body=INVOKE_BODY)
        assert (
            invoked["ResponseMetadata"]["HTTPHeaders"]["content-type"] == "application/vnd.amazon.eventstream"
        )
        assert invoked["contentType"] == "application/json"  # X-Amzn-Bedrock-Content-Type
        invoked["body"].close()
        streamed = bedrock.converse_stream(modelId="m", messages=HI)
        assert "contentType" not in streamed
        streamed["stream"].close()


def test_errors_are_botocores_exceptions() -> None:
    with MockLLMServer([{"name": "m", "reply": "ok"}], options=Options(strict=True)) as server:
        bedrock = client(server.url)
        with pytest.raises(bedrock.exceptions.ValidationException) as bad_role:
            bedrock.converse(modelId="m", messages=[{"role": "system", "content": [{"text": "x"}]}])
        assert bad_role.value.response["Error"]["Message"] == (
            "1 validation error detected: Value at 'messages.1.member.role' failed to satisfy "
            "constraint: Member must satisfy enum value set: [user, assistant]"
        )
        with pytest.raises(bedrock.exceptions.ValidationException) as no_version:
            bedrock.invoke_model(modelId="m", body=json.dumps({"max_tokens": 5, "messages": []}))
        assert no_version.value.response["Error"]["Message"] == (
            "Malformed input request: #: required key [anthropic_version] not found, please reformat "
            "your input and try again."
        )
        with pytest.raises(bedrock.exceptions.ResourceNotFoundException):
            bedrock.converse(modelId="no-such-scenario", messages=HI)
        raw = httpx.post(f"{server.url}/model/m/generate", json={})
        assert raw.status_code == 404
        assert raw.headers["x-amzn-ErrorType"].startswith("UnknownOperationException:")
        assert set(raw.json()) == {"message"}


def test_a_model_arn_is_read_from_the_encoded_path() -> None:
    arn = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-sonnet-4"
    with MockLLMServer([{"name": "m", "reply": "ok"}]) as server:
        assert client(server.url).converse(modelId=arn, messages=HI)["stopReason"] == "end_turn"
        assert server.calls.last.conversation.model == arn


def test_api_key_is_the_access_key_id_of_the_signature() -> None:
    """boto3 signs with SigV4 (it sends a Bedrock API key as a bearer token only over HTTPS): with
    ``--api-key``, the signature's access key id must be the key; the signature is not checked."""
    with MockLLMServer([{"name": "m", "reply": "ok"}], options=Options(api_key="AKIDMOCK")) as server:
        assert (
            client(server.url, key="AKIDMOCK").converse(modelId="m", messages=HI)["stopReason"] == "end_turn"
        )
        with pytest.raises(botocore.exceptions.ClientError) as wrong:
            client(server.url, key="AKIDOTHER").converse(modelId="m", messages=HI)
        assert wrong.value.response["Error"]["Code"] == "UnrecognizedClientException"
        bearer = httpx.post(
            f"{server.url}/model/m/converse",
            json={"messages": HI},
            headers={"Authorization": "Bearer AKIDMOCK"},
        )
        assert bearer.json()["stopReason"] == "end_turn"


def test_boto3_takes_the_endpoint_from_aws_endpoint_url_bedrock_runtime(
    pack: MockLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", pack.url)
    pack.state.scenarios.reset_counters()
    parts: list[str] = []
    converse_stream(client(None), "tool-call", parts)
    assert "".join(parts) == SHIPPED["tool-call"].reply_text
    assert pack.calls.last.path == "/model/tool-call/converse-stream"


def test_the_banner_gives_the_bedrock_endpoint(served: list[Served]) -> None:
    server = start(served, "--scenario", str(SCENARIOS / "tool-call.yaml"))
    assert f"  Bedrock endpoint_url:   {server.url}  ($AWS_ENDPOINT_URL_BEDROCK_RUNTIME)\n" in server.banner
    assert server.stop()[0] == 0


def test_the_agent_tool_loop_on_invoke_with_anthropic_bodies() -> None:
    with MockLLMServer(ROOT / "scenarios" / "agent" / "weather.yaml") as server:
        bedrock = client(server.url)

        def invoke_messages(messages: list[dict[str, Any]]) -> dict[str, Any]:
            body = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 100, "messages": messages}
            return json.loads(bedrock.invoke_model(modelId="m", body=json.dumps(body))["body"].read())

        messages: list[dict[str, Any]] = [{"role": "user", "content": "What is the weather in Paris?"}]
        first = invoke_messages(messages)
        assert first["stop_reason"] == "tool_use"
        (use,) = [block for block in first["content"] if block["type"] == "tool_use"]
        result = {"type": "tool_result", "tool_use_id": use["id"], "content": '{"temp": 18}'}
        messages += [
            {"role": "assistant", "content": first["content"]},
            {"role": "user", "content": [result]},
        ]
        final = invoke_messages(messages)
        assert final["content"] == [{"type": "text", "text": "It is 18 °C in Paris."}]
        assert [call.scenario for call in server.calls] == ["ask-weather", "answer-weather"]
