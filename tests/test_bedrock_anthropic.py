"""Claude on Bedrock through the anthropic SDK's own Bedrock client (``AnthropicBedrock``), which
calls ``invoke-with-response-stream`` and decodes the event stream with botocore's parser: every
shipped scenario, pinned to what it does with each fault."""

from __future__ import annotations

import json
from collections.abc import Iterator

import anthropic
import botocore.eventstream
import httpx2
import pytest

from mockllm import MockLLMServer, load_scenarios

from .clients import MESSAGES, READ_TIMEOUT, Seen, _guard
from .conftest import SCENARIOS

pytestmark = pytest.mark.functional

SHIPPED = {s.name: s for s in load_scenarios([SCENARIOS])}
FULL = -1
EXPECTED: dict[str, tuple[int, type[BaseException] | None]] = {
    "disconnect-truncate": (10, None),
    "disconnect-fin": (10, httpx2.RemoteProtocolError),
    "disconnect-mid-event": (10, httpx2.RemoteProtocolError),
    "disconnect-reset": (10, httpx2.ReadError),
    "flaky-stream": (5, httpx2.ReadError),
    "stall-forever": (0, httpx2.ReadTimeout),
    # the exception message becomes an Anthropic error event: {"type": "modelStreamErrorException"}
    "error-event": (6, anthropic.APIStatusError),
    "flaky": (0, anthropic.ServiceUnavailableError),
    "rate-limited": (0, anthropic.RateLimitError),
    "malformed-bad-crc": (3, botocore.eventstream.ChecksumMismatch),
    "malformed-missing-prefix": (3, botocore.eventstream.ChecksumMismatch),
    "malformed-raw": (3, botocore.eventstream.ChecksumMismatch),
    "malformed-bad-utf8": (3, UnicodeDecodeError),
    # unlike boto3 code that reads event["chunk"]["bytes"], the SDK skips a message whose payload
    # is not JSON: malformed-invalid-json, -truncated-json and -not-json read in full
}


def read(base_url: str, name: str) -> Seen:
    client = anthropic.AnthropicBedrock(
        aws_access_key="mock",
        aws_secret_key="mock",
        aws_region="us-east-1",
        base_url=base_url,
        max_retries=0,
        timeout=READ_TIMEOUT,
    )

    def gather(parts: list[str]) -> None:
        with client, client.messages.stream(model=name, max_tokens=100, messages=MESSAGES) as stream:  # type: ignore[arg-type]
            parts.extend(stream.text_stream)

    return _guard(gather)


@pytest.fixture(scope="module")
def pack() -> Iterator[MockLLMServer]:
    with MockLLMServer(SCENARIOS, time_scale=0.1) as server:
        yield server


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_anthropic_bedrock_reads_every_shipped_scenario(pack: MockLLMServer, name: str) -> None:
    pack.state.scenarios.reset_counters()
    seen = read(pack.url, name)
    runes, error = EXPECTED.get(name, (FULL, None))
    scenario = SHIPPED[name]
    assert seen.text == (scenario.reply_text if runes == FULL else "".join(scenario.tokens[:runes]))
    if error is None:
        assert seen.error is None
    else:
        assert seen.error is not None
        assert issubclass(seen.error, error), seen.error
    assert pack.calls.last.path == f"/model/{name}/invoke-with-response-stream"


def test_anthropic_bedrock_tool_use_whole_and_streamed(pack: MockLLMServer) -> None:
    client = anthropic.AnthropicBedrock(
        aws_access_key="mock", aws_secret_key="mock", aws_region="us-east-1", base_url=pack.url
    )
    with client:
        whole = client.messages.create(model="tool-call", max_tokens=100, messages=MESSAGES)  # type: ignore[arg-type]
        with client.messages.stream(model="tool-call", max_tokens=100, messages=MESSAGES) as stream:  # type: ignore[arg-type]
            streamed = stream.get_final_message()
    for message in (whole, streamed):
        assert message.stop_reason == "tool_use"
        assert [block.type for block in message.content] == ["text", "tool_use"]
        assert message.content[1].input == json.loads(SHIPPED["tool-call"].tool_calls[0].arguments)  # type: ignore[union-attr]
