"""Every shipped scenario through the embeddings routes, read by each official SDK: what each
raises on each fault (the chat formats' tables are test_formats_shipped.py's)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import httpx
import httpx2
import ollama
import openai
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as genai_types

from mockllm import MockLLMServer, load_scenarios
from mockllm.vectors import vector

from .conftest import SCENARIOS

pytestmark = pytest.mark.functional

SHIPPED = sorted(s.name for s in load_scenarios([SCENARIOS]))
TIMEOUT = 1.0  # seconds; the pack's 3 s stall is 0.3 s at time_scale 0.1

# The faults that mean something without a stream; every other shipped scenario is answered
# (keep-alives, malformed lines, splits and wire options are bytes of a stream).
RAISES: dict[str, dict[str, type[BaseException]]] = {
    "openai": {
        "disconnect-fin": openai.APIConnectionError,
        "disconnect-mid-event": openai.APIConnectionError,
        "disconnect-reset": openai.APIConnectionError,
        "disconnect-truncate": json.JSONDecodeError,  # half the body, cleanly ended
        "error-event": openai.InternalServerError,
        "flaky": openai.InternalServerError,
        "flaky-stream": openai.APIConnectionError,
        "rate-limited": openai.RateLimitError,
        "stall-forever": openai.APITimeoutError,
    },
    "ollama": {
        "disconnect-fin": httpx.RemoteProtocolError,
        "disconnect-mid-event": httpx.RemoteProtocolError,
        "disconnect-reset": httpx.ReadError,
        "disconnect-truncate": json.JSONDecodeError,
        "error-event": ollama.ResponseError,
        "flaky": ollama.ResponseError,
        "flaky-stream": httpx.ReadError,
        "rate-limited": ollama.ResponseError,
        "stall-forever": httpx.ReadTimeout,
    },
    "google-genai": {
        # network errors surface unwrapped, from httpx2 (the SDK's HTTP client)
        "disconnect-fin": httpx2.RemoteProtocolError,
        "disconnect-mid-event": httpx2.RemoteProtocolError,
        "disconnect-reset": httpx2.ReadError,
        "disconnect-truncate": json.JSONDecodeError,
        "error-event": genai_errors.ServerError,
        "flaky": genai_errors.ServerError,
        "flaky-stream": httpx2.ReadError,
        "rate-limited": genai_errors.ClientError,
        "stall-forever": httpx2.ReadTimeout,
    },
}
RAISES["azure"] = RAISES["openai"]  # the same SDK and parser
OUTCOMES = {
    "disconnect-fin": "fault:fin",
    "disconnect-mid-event": "fault:mid-event",
    "disconnect-reset": "fault:reset",
    "disconnect-truncate": "fault:truncate",
    "error-event": "fault:error_event",
    "flaky": "fault:status",
    "flaky-stream": "fault:reset",
    "rate-limited": "fault:status",
    "stall-forever": "fault:stall-forever",
}


@pytest.fixture(scope="module")
def pack() -> Iterator[MockLLMServer]:
    with MockLLMServer(SCENARIOS, time_scale=0.1) as server:
        yield server


@pytest.fixture(scope="module")
def read(pack: MockLLMServer) -> Iterator[dict[str, Callable[[str], list[float]]]]:
    """A function per SDK that embeds "hi" with the scenario as the model."""
    url = pack.url
    oai = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0, timeout=TIMEOUT)
    azure = openai.AzureOpenAI(
        azure_endpoint=url, api_key="x", api_version="2024-10-21", max_retries=0, timeout=TIMEOUT
    )
    local = ollama.Client(host=url, timeout=TIMEOUT)
    google = genai.Client(api_key="x", http_options=genai_types.HttpOptions(base_url=url, timeout=1000))

    def gemini(name: str) -> list[float]:
        embeddings = google.models.embed_content(model=name, contents="hi").embeddings
        assert embeddings is not None
        values = embeddings[0].values
        assert values is not None
        return values

    yield {
        "openai": lambda name: oai.embeddings.create(model=name, input="hi").data[0].embedding,
        "azure": lambda name: azure.embeddings.create(model=name, input="hi").data[0].embedding,
        "ollama": lambda name: list(local.embed(model=name, input="hi").embeddings[0]),
        "google-genai": gemini,
    }
    for client in (oai, azure, local, google):
        client.close()


@pytest.mark.parametrize("sdk", sorted(RAISES))
@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_scenario_through_each_sdk(
    pack: MockLLMServer, read: dict[str, Callable[[str], list[float]]], name: str, sdk: str
) -> None:
    pack.state.scenarios.reset_counters()
    expected = RAISES[sdk].get(name)
    if expected is None:
        assert read[sdk](name) == vector("hi", 1536)  # the scenario's name is no known model
    else:
        with pytest.raises(expected):
            read[sdk](name)
    assert pack.calls.last.wait().outcome == OUTCOMES.get(name, "completed")
    assert pack.errors == []


def test_the_tables_name_only_shipped_scenarios() -> None:
    for table in (*RAISES.values(), OUTCOMES):
        assert set(table) <= set(SHIPPED)
