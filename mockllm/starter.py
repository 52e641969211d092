"""``mockllm init``: a starter a new user can run at once: scenarios, a conftest.py and tests.

The files are plain text here (pure: :func:`starter_files`); the command only writes them. The
scenarios carry the ``yaml-language-server`` line editors read to complete and check their keys
against the JSON Schema, which is written beside them.
"""

from __future__ import annotations

from importlib import resources

SCHEMA_FILE = "scenario.schema.json"
SCHEMA_LINE = f"# yaml-language-server: $schema=./{SCHEMA_FILE}\n"

HELLO = (
    SCHEMA_LINE
    + """\
# The default: what a request gets when no other scenario is chosen.
name: hello
default: true
description: A short reply, one character every 20 ms after a 200 ms first token.
reply: "Hello from mockllm!"
timing:
  first_token: 200ms
  per_token: 20ms
"""
)

FLAKY = (
    SCHEMA_LINE
    + """\
# Chosen with the model name: model="flaky". The n-th request gets the n-th step.
name: flaky
description: 503, then 429 with Retry-After, then the whole stream.
reply: "Third time lucky."
sequence:
  - {status: 503}
  - {status: 429, headers: {Retry-After: "0"}}
  - {}
"""
)

STALL = (
    SCHEMA_LINE
    + """\
# Chosen with the model name: model="stall". Silence after three characters, for ever.
name: stall
description: Three characters, then nothing; a client needs a read timeout to get out.
reply: "Hello, and then silence."
faults:
  - {at: 3, stall: forever}
"""
)

CONFTEST = '''\
"""Every test that asks for the ``mockllm`` fixture gets the scenarios in ./scenarios/."""

from pathlib import Path

import pytest


@pytest.fixture
def mockllm_scenarios():
    return Path(__file__).parent / "scenarios"
'''

TESTS = '''\
"""Tests against the mockllm fixture: a real server on 127.0.0.1, reset before each test.

Run them with ``pytest``. Point your own client at ``mockllm.openai_base_url`` (OpenAI SDKs) or
``mockllm.url`` (Anthropic, Ollama) instead of the stdlib client below.
"""

import json
import urllib.error
import urllib.request

import pytest


def chat(base_url: str, model: str, timeout: float = 5) -> str:
    """A minimal streaming chat client: POST, then read the SSE stream's deltas to [DONE]."""
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": True}
    request = urllib.request.Request(
        f"{base_url}/chat/completions",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": "Bearer x"},
    )
    text = ""
    with urllib.request.urlopen(request, timeout=timeout) as response:
        for line in response:
            data = line.decode().removeprefix("data:").strip()
            if not line.startswith(b"data:") or data == "[DONE]":
                continue
            for choice in json.loads(data)["choices"]:
                text += choice["delta"].get("content") or ""
    return text


def test_the_default_scenario_streams(mockllm):
    assert chat(mockllm.openai_base_url, "any-model") == "Hello from mockllm!"
    assert mockllm.calls.last.json["messages"][-1]["content"] == "hi"


@pytest.mark.mockllm(time_scale=0)  # every scripted delay collapsed
def test_a_client_retries_503_and_429(mockllm):
    for status in (503, 429):
        with pytest.raises(urllib.error.HTTPError) as error:
            chat(mockllm.openai_base_url, "flaky")
        error.value.close()
        assert error.value.code == status
    assert chat(mockllm.openai_base_url, "flaky") == "Third time lucky."


def test_a_read_timeout_ends_a_stalled_stream(mockllm):
    with pytest.raises(TimeoutError):
        chat(mockllm.openai_base_url, "stall", timeout=0.5)
    mockllm.calls.assert_client_aborted(within=2)
'''


def starter_files() -> dict[str, str]:
    """What ``mockllm init`` writes: relative path → text."""
    schema = resources.files("mockllm").joinpath("data", SCHEMA_FILE).read_text("utf-8")
    return {
        f"scenarios/{SCHEMA_FILE}": schema,
        "scenarios/hello.yaml": HELLO,
        "scenarios/flaky.yaml": FLAKY,
        "scenarios/stall.yaml": STALL,
        "conftest.py": CONFTEST,
        "test_mockllm_starter.py": TESTS,
    }
