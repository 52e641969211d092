"""Every shipped scenario, read by the openai SDK and by httpx-sse, pinned to what each really does.

This table is the chaos pack's contract: if a change to mockllm alters what a real client sees for
a scenario, a row here fails.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import httpx_sse
import openai
import pytest

from mockllm import MockLLMServer, load_scenarios

from .clients import READ_TIMEOUT, Seen, openai_chat
from .conftest import SCENARIOS

pytestmark = pytest.mark.functional

MESSAGES = [{"role": "user", "content": "hi"}]
SHIPPED = {s.name: s for s in load_scenarios([SCENARIOS])}
TIME_SCALE = 0.1  # the 3 s stall becomes 0.3 s: well below the clients' 1 s read timeout


def full(name: str) -> Seen:
    return Seen(SHIPPED[name].reply_text)


def prefix(name: str, tokens: int, error: type[BaseException] | None) -> Seen:
    return Seen("".join(SHIPPED[name].tokens[:tokens]), error)


# name → (what the openai SDK sees, httpx-sse's events: count of data events, the role chunk
# included, or the exception)
EXPECTED: dict[str, tuple[Seen, int | type[BaseException]]] = {
    "slow": (full("slow"), len(SHIPPED["slow"].tokens) + 3),
    "crlf": (full("crlf"), 24),
    "cr-only": (full("cr-only"), 24),
    "stall": (full("stall"), 29),
    "stall-forever": (Seen("", openai.APITimeoutError), httpx.ReadTimeout),
    "stall-mid-event": (full("stall-mid-event"), 30),
    "keepalive-comment": (full("keepalive-comment"), 14),
    "keepalive-blank": (full("keepalive-blank"), 14),
    # the three empty data events are real events; the SDK json-decodes them and fails
    "keepalive-empty-data": (prefix("keepalive-empty-data", 4, json.JSONDecodeError), 14 + 3),
    "malformed-invalid-json": (prefix("malformed-invalid-json", 3, json.JSONDecodeError), 22),
    "malformed-truncated-json": (prefix("malformed-truncated-json", 3, json.JSONDecodeError), 24),
    "malformed-not-json": (prefix("malformed-not-json", 3, json.JSONDecodeError), 20),
    "malformed-missing-prefix": (full("malformed-missing-prefix"), 23),
    "malformed-bad-utf8": (prefix("malformed-bad-utf8", 3, UnicodeDecodeError), 21),
    # no checksum in SSE: the damaged event (its last "}" now "|") reaches the JSON decoder
    "malformed-bad-crc": (prefix("malformed-bad-crc", 3, json.JSONDecodeError), 21),
    # httpx-sse, like the SDK, dispatches the data-less "event: ping" block as an empty event
    "malformed-raw": (prefix("malformed-raw", 3, json.JSONDecodeError), 19 + 1),
    "disconnect-truncate": (prefix("disconnect-truncate", 10, None), 11),
    "disconnect-fin": (prefix("disconnect-fin", 10, openai.APIConnectionError), httpx.RemoteProtocolError),
    "disconnect-reset": (prefix("disconnect-reset", 10, openai.APIConnectionError), httpx.ReadError),
    "disconnect-mid-event": (
        prefix("disconnect-mid-event", 10, openai.APIConnectionError),
        httpx.RemoteProtocolError,
    ),
    "error-event": (prefix("error-event", 6, openai.APIError), 8),
    "rate-limited": (Seen("", openai.RateLimitError), httpx_sse.SSEError),
    "flaky": (Seen("", openai.InternalServerError), httpx_sse.SSEError),
    "flaky-stream": (prefix("flaky-stream", 5, openai.APIConnectionError), len("Second time lucky.") + 3),
    "split-utf8": (full("split-utf8"), 14),
    # the role chunk, text runes, the call's opening chunk, one chunk per argument rune, finish, [DONE]
    "tool-call": (
        full("tool-call"),
        len(SHIPPED["tool-call"].tokens) + 1 + len(SHIPPED["tool-call"].tool_calls[0].arguments) + 3,
    ),
    # neither strips the BOM, so the first event's field is "\ufeffdata": the role chunk is lost
    "wire-bom": (full("wire-bom"), 12),
    "wire-no-space": (full("wire-no-space"), 28),
    # both remember the last id and dispatch an empty event on each of the two blank lines
    "wire-event-ids-keepalive": (prefix("wire-event-ids-keepalive", 5, json.JSONDecodeError), 23 + 2),
    "wire-preamble": (full("wire-preamble"), 27),
    "wire-close-delimited": (full("wire-close-delimited"), 16),
    "wire-content-length": (full("wire-content-length"), 17),
    "wire-no-content-type": (full("wire-no-content-type"), httpx_sse.SSEError),
    "wire-json-content-type": (full("wire-json-content-type"), httpx_sse.SSEError),
}


def test_every_shipped_scenario_has_an_expectation() -> None:
    assert sorted(EXPECTED) == sorted(SHIPPED)


@pytest.fixture(scope="module")
def pack() -> Iterator[MockLLMServer]:
    with MockLLMServer(SCENARIOS, time_scale=TIME_SCALE) as server:
        yield server


def read_with_openai(server: MockLLMServer, name: str) -> Seen:
    return openai_chat(server.url, name)


def read_with_httpx_sse(server: MockLLMServer, name: str) -> int | type[BaseException]:
    try:
        with (
            httpx.Client(timeout=READ_TIMEOUT) as client,
            httpx_sse.connect_sse(
                client,
                "POST",
                f"{server.openai_base_url}/chat/completions",
                json={"model": name, "messages": MESSAGES, "stream": True},
            ) as source,
        ):
            return len(list(source.iter_sse()))
    except Exception as exc:
        return type(exc)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_clients_see_what_the_scenario_promises(pack: MockLLMServer, name: str) -> None:
    pack.server.app[__import__("mockllm.state").state.STATE].scenarios.reset_counters()
    expected_sdk, expected_sse = EXPECTED[name]
    seen = read_with_openai(pack, name)
    assert seen.text == expected_sdk.text
    if expected_sdk.error is None:
        assert seen.error is None
    else:
        assert seen.error is not None
        assert issubclass(seen.error, expected_sdk.error)
    assert read_with_httpx_sse(pack, name) == expected_sse


def test_server_is_healthy_after_the_whole_pack() -> None:
    with MockLLMServer(SCENARIOS, time_scale=0) as server:
        for name in sorted(SHIPPED):
            read_with_openai(server, name)
            read_with_httpx_sse(server, name)
        assert httpx.get(f"{server.url}/healthz").json()["status"] == "ok"
        assert read_with_openai(server, "crlf") == full("crlf")


def test_readme_table_lists_every_shipped_scenario() -> None:
    readme = (SCENARIOS.parent / "README.md").read_text(encoding="utf-8")
    missing = [name for name in SHIPPED if f"`{name}`" not in readme]
    assert missing == []


def test_every_shipped_scenario_says_what_a_correct_client_does() -> None:
    assert [name for name, s in SHIPPED.items() if len(s.description) < 40] == []
