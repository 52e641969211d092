"""Every shipped scenario through every other wire format, read by that API's official client.

A scenario says what is said and how it misbehaves; the endpoint decides the format. These tables
pin what each real client does with each fault in its own format's terms (OpenAI chat is pinned in
test_scenarios_shipped.py, beside httpx-sse).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import anthropic
import httpx
import httpx2
import ollama
import openai
import pytest
from google.genai import errors as genai_errors

from mockllm import MockLLMServer, load_scenarios

from .clients import READERS, ErrorEventSeen, Seen
from .conftest import SCENARIOS

pytestmark = pytest.mark.functional

SHIPPED = {s.name: s for s in load_scenarios([SCENARIOS])}
FULL = -1
#: (how many tokens the client read, or FULL, or the exact text; the exception it raised)
Expected = tuple[int | str, type[BaseException] | None]

# What every OpenAI SDK endpoint sees: the same SSE parser, so the same faults break it.
OPENAI: dict[str, Expected] = {
    "disconnect-truncate": (10, None),
    "disconnect-fin": (10, openai.APIConnectionError),
    "disconnect-reset": (10, openai.APIConnectionError),
    "disconnect-mid-event": (10, openai.APIConnectionError),
    "error-event": (6, openai.APIError),
    "flaky": (0, openai.InternalServerError),
    "flaky-stream": (5, openai.APIConnectionError),
    "keepalive-empty-data": (4, json.JSONDecodeError),
    "malformed-invalid-json": (3, json.JSONDecodeError),
    "malformed-truncated-json": (3, json.JSONDecodeError),
    "malformed-not-json": (3, json.JSONDecodeError),
    "malformed-bad-utf8": (3, UnicodeDecodeError),
    "malformed-bad-crc": (3, json.JSONDecodeError),
    "malformed-raw": (3, json.JSONDecodeError),
    "rate-limited": (0, openai.RateLimitError),
    "stall-forever": (0, openai.APITimeoutError),
    "wire-event-ids-keepalive": (5, json.JSONDecodeError),
    # no BOM stripping: the first event's field is "\ufeffdata", so the first event is lost
    "wire-bom": (SHIPPED["wire-bom"].reply_text[1:], None),
}

EXPECTED: dict[str, dict[str, Expected]] = {
    "openai-completions": OPENAI,
    # the same SDK and parser; the event the BOM loses is Azure's first chunk (the prompt's
    # filter results), not text
    "azure-chat": {**OPENAI, "wire-bom": (FULL, None)},
    "azure-completions": {**OPENAI, "wire-bom": (FULL, None)},
    "openai-responses": {
        **OPENAI,
        # the SDK yields the in-stream `error` event instead of raising
        "error-event": (6, ErrorEventSeen),
        "wire-bom": (FULL, None),  # the lost first event is response.created, not text
    },
    "anthropic": {
        **OPENAI,
        # mid-stream network errors surface unwrapped, from httpx2 (the SDK's HTTP client)
        "disconnect-fin": (10, httpx2.RemoteProtocolError),
        "disconnect-reset": (10, httpx2.ReadError),
        "disconnect-mid-event": (10, httpx2.RemoteProtocolError),
        "flaky-stream": (5, httpx2.ReadError),
        "stall-forever": (0, httpx2.ReadTimeout),
        "error-event": (6, anthropic.APIStatusError),
        "flaky": (0, anthropic.ServiceUnavailableError),
        "rate-limited": (0, anthropic.RateLimitError),
        # the SDK skips events with empty data and events without a known name
        "keepalive-empty-data": (FULL, None),
        "malformed-raw": (FULL, None),
        "wire-event-ids-keepalive": (FULL, None),
        "wire-bom": (FULL, None),  # the lost first event is message_start, not text
    },
    # google-genai (sync: httpx2) reads lines itself: only "data: " lines are events; any other
    # line goes to a brace-balancing buffer meant for error bodies and must parse as JSON
    "gemini": {
        "disconnect-truncate": (10, None),
        "disconnect-fin": (10, httpx2.RemoteProtocolError),
        "disconnect-reset": (10, httpx2.ReadError),
        "disconnect-mid-event": (10, httpx2.RemoteProtocolError),
        "flaky-stream": (5, httpx2.ReadError),
        "stall-forever": (0, httpx2.ReadTimeout),
        # the in-stream {"error": ...} chunk is raised by status: 500 → ServerError
        "error-event": (6, genai_errors.ServerError),
        "flaky": (0, genai_errors.ServerError),  # 503 (the SDK retries nothing unless told to)
        "rate-limited": (0, genai_errors.ClientError),
        # a comment, "data:" without its space, "id:" or a BOM-prefixed line is not "data: ":
        # it reaches the raw-JSON buffer, which cannot parse it
        "keepalive-comment": (4, genai_errors.UnknownApiResponseError),
        "keepalive-empty-data": (4, genai_errors.UnknownApiResponseError),
        "wire-event-ids-keepalive": (0, genai_errors.UnknownApiResponseError),
        "wire-no-space": (0, genai_errors.UnknownApiResponseError),
        "wire-preamble": (0, genai_errors.UnknownApiResponseError),
        "wire-bom": (0, genai_errors.UnknownApiResponseError),
        "malformed-invalid-json": (3, genai_errors.UnknownApiResponseError),
        "malformed-truncated-json": (3, genai_errors.UnknownApiResponseError),
        "malformed-not-json": (3, genai_errors.UnknownApiResponseError),
        "malformed-raw": (3, genai_errors.UnknownApiResponseError),
        "malformed-bad-crc": (3, genai_errors.UnknownApiResponseError),  # the last brace flipped
        # the bare JSON line parses in the raw buffer: the imitated chunk is read, then the real one
        "malformed-missing-prefix": ("No pprefix, no event.", None),
        # lines are decoded with errors="replace": the bad bytes arrive as two U+FFFD
        "malformed-bad-utf8": ("Bad\ufffd\ufffd bytes inside.", None),
    },
    "ollama-chat": {
        "disconnect-truncate": (10, None),
        "disconnect-fin": (10, httpx.RemoteProtocolError),
        "disconnect-reset": (10, httpx.ReadError),
        "disconnect-mid-event": (10, httpx.RemoteProtocolError),
        "error-event": (6, ollama.ResponseError),
        "flaky": (0, ollama.ResponseError),
        "flaky-stream": (5, httpx.ReadError),
        "rate-limited": (0, ollama.ResponseError),
        "stall-forever": (0, httpx.ReadTimeout),
        # NDJSON has no keep-alive: any keep-alive line is a line that is not JSON
        "keepalive-comment": (4, json.JSONDecodeError),
        "keepalive-blank": (4, json.JSONDecodeError),
        "keepalive-empty-data": (4, json.JSONDecodeError),
        "wire-event-ids-keepalive": (5, json.JSONDecodeError),
        "malformed-invalid-json": (3, json.JSONDecodeError),
        "malformed-truncated-json": (3, json.JSONDecodeError),
        "malformed-not-json": (3, json.JSONDecodeError),
        "malformed-missing-prefix": (3, json.JSONDecodeError),
        "malformed-raw": (3, json.JSONDecodeError),
        "malformed-bad-crc": (3, json.JSONDecodeError),
        "wire-bom": (0, json.JSONDecodeError),  # the BOM makes the first line not JSON
        # httpx decodes lines with errors="replace": the bad bytes arrive as two U+FFFD
        "malformed-bad-utf8": ("Bad\ufffd\ufffd bytes inside.", None),
    },
}


def expected_seen(fmt: str, name: str) -> Seen:
    scenario = SHIPPED[name]
    read, error = EXPECTED[fmt].get(name, (FULL, None))
    if isinstance(read, str):
        return Seen(read, error)
    return Seen(scenario.reply_text if read == FULL else "".join(scenario.tokens[:read]), error)


@pytest.fixture(scope="module")
def pack() -> Iterator[MockLLMServer]:
    with MockLLMServer(SCENARIOS, time_scale=0.1) as server:
        yield server


@pytest.mark.parametrize("fmt", sorted(EXPECTED))
@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_official_clients_in_every_format(pack: MockLLMServer, fmt: str, name: str) -> None:
    pack.state.scenarios.reset_counters()
    seen = READERS[fmt](pack.url, name)
    expected = expected_seen(fmt, name)
    assert seen.text == expected.text
    if expected.error is None:
        assert seen.error is None
    else:
        assert seen.error is not None
        assert issubclass(seen.error, expected.error), seen.error
    assert pack.calls.last.format == fmt
