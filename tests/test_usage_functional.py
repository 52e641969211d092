"""A scenario's ``usage``: the token counts each official client reads, streamed and whole, in
place of mockllm's own counts (which a scenario without it still reports)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import ollama
import openai
import pytest
import yaml

from mockllm import MockLLMServer
from mockllm.errors import ScenarioError
from mockllm.loader import parse_scenarios
from mockllm.scenario import Usage

from .clients import _gemini
from .conftest import ROOT, Serve, make_scenario
from .recorded import Recording
from .test_bedrock_sdk import HI
from .test_bedrock_sdk import client as bedrock_client

pytestmark = pytest.mark.functional

PROMPT, COMPLETION = 1234, 56
SCRIPTED = {
    "name": "m",
    "reply": "Hello there",
    "usage": {"prompt_tokens": PROMPT, "completion_tokens": COMPLETION},
}
MESSAGES: Any = [{"role": "user", "content": "hi"}]


@pytest.fixture
def server(serve: Serve) -> MockLLMServer:
    return serve(SCRIPTED)


@pytest.fixture
def clients() -> Iterator[list[Any]]:
    """The clients a test opens (each has ``close()``), closed after it."""
    opened: list[Any] = []
    yield opened
    for client in opened:
        client.close()


def _openai(server: MockLLMServer, clients: list[Any]) -> openai.OpenAI:
    client = openai.OpenAI(base_url=server.openai_base_url, api_key="x", max_retries=0)
    clients.append(client)
    return client


def test_openai_chat_reads_the_scripted_usage_streamed_and_whole(
    server: MockLLMServer, clients: list[Any]
) -> None:
    client = _openai(server, clients)
    chunks = list(
        client.chat.completions.create(
            model="m", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
    )
    usage = chunks[-1].usage
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (
        PROMPT,
        COMPLETION,
        PROMPT + COMPLETION,
    )
    whole = client.chat.completions.create(model="m", messages=MESSAGES).usage
    assert whole is not None
    assert (whole.prompt_tokens, whole.completion_tokens) == (PROMPT, COMPLETION)
    text = client.completions.create(model="m", prompt="hi").usage
    assert text is not None
    assert (text.prompt_tokens, text.completion_tokens) == (PROMPT, COMPLETION)


def test_openai_responses_reads_the_scripted_usage(server: MockLLMServer, clients: list[Any]) -> None:
    client = _openai(server, clients)
    with client.responses.stream(model="m", input="hi") as stream:
        final = stream.get_final_response()
    assert final.usage is not None
    assert (final.usage.input_tokens, final.usage.output_tokens) == (PROMPT, COMPLETION)
    whole = client.responses.create(model="m", input="hi").usage
    assert whole is not None
    assert (whole.input_tokens, whole.output_tokens) == (PROMPT, COMPLETION)


def test_anthropic_reads_the_scripted_usage(server: MockLLMServer, clients: list[Any]) -> None:
    client = anthropic.Anthropic(base_url=server.url, api_key="x", max_retries=0)
    clients.append(client)
    with client.messages.stream(model="m", max_tokens=100, messages=MESSAGES) as stream:
        final = stream.get_final_message()
    assert (final.usage.input_tokens, final.usage.output_tokens) == (PROMPT, COMPLETION)
    whole = client.messages.create(model="m", max_tokens=100, messages=MESSAGES)
    assert (whole.usage.input_tokens, whole.usage.output_tokens) == (PROMPT, COMPLETION)


def test_ollama_reads_the_scripted_counts(server: MockLLMServer, clients: list[Any]) -> None:
    client = ollama.Client(host=server.url)
    clients.append(client._client)
    last = list(client.chat(model="m", messages=MESSAGES, stream=True))[-1]
    assert (last.prompt_eval_count, last.eval_count) == (PROMPT, COMPLETION)
    whole = client.generate(model="m", prompt="hi")
    assert (whole.prompt_eval_count, whole.eval_count) == (PROMPT, COMPLETION)


def test_gemini_reads_the_scripted_usage_metadata(server: MockLLMServer, clients: list[Any]) -> None:
    client = _gemini(server.url, timeout=5.0)
    clients.append(client)
    last = list(client.models.generate_content_stream(model="m", contents="hi"))[-1]
    assert last.usage_metadata is not None
    assert (last.usage_metadata.prompt_token_count, last.usage_metadata.candidates_token_count) == (
        PROMPT,
        COMPLETION,
    )
    whole = client.models.generate_content(model="m", contents="hi").usage_metadata
    assert whole is not None
    assert (whole.prompt_token_count, whole.candidates_token_count) == (PROMPT, COMPLETION)


def test_bedrock_converse_reads_the_scripted_usage(server: MockLLMServer, clients: list[Any]) -> None:
    runtime = bedrock_client(server.url)
    clients.append(runtime)
    events = list(runtime.converse_stream(modelId="m", messages=HI)["stream"])
    usage = next(event["metadata"]["usage"] for event in events if "metadata" in event)
    assert (usage["inputTokens"], usage["outputTokens"]) == (PROMPT, COMPLETION)
    whole = runtime.converse(modelId="m", messages=HI)["usage"]
    assert (whole["inputTokens"], whole["outputTokens"], whole["totalTokens"]) == (
        PROMPT,
        COMPLETION,
        PROMPT + COMPLETION,
    )


def test_one_count_alone_leaves_the_other_to_mockllm(serve: Serve, clients: list[Any]) -> None:
    """``completion_tokens`` alone: the prompt is mockllm's count; and a scenario without
    ``usage`` reports what it sent (11 runes)."""
    server = serve(
        {"name": "m", "reply": "Hello there", "usage": {"completion_tokens": 7}},
        {"name": "plain", "reply": "Hello there"},
    )
    client = _openai(server, clients)
    scripted = client.chat.completions.create(model="m", messages=MESSAGES).usage
    plain = client.chat.completions.create(model="plain", messages=MESSAGES).usage
    assert scripted is not None
    assert plain is not None
    assert scripted.completion_tokens == 7
    assert scripted.prompt_tokens == plain.prompt_tokens > 0
    assert plain.completion_tokens == len("Hello there")


def test_the_context_window_still_measures_the_request(serve: Serve, clients: list[Any]) -> None:
    """A scripted prompt count past the window does not refuse a small request: only what the
    reply reports changes."""
    server = serve({"name": "m", "reply": "ok", "context_window": 100, "usage": {"prompt_tokens": 5000}})
    usage = _openai(server, clients).chat.completions.create(model="m", messages=MESSAGES).usage
    assert usage is not None
    assert usage.prompt_tokens == 5000


@pytest.mark.parametrize("sdk", ["openai-chat", "anthropic", "ollama"])
def test_a_recording_keeps_the_upstreams_usage(sdk: str, tmp_path: Path, clients: list[Any]) -> None:
    """``mockllm record`` writes the counts the upstream reported as ``usage``; the replay
    reports them again (a replay without it would report mockllm's count of the recorded text)."""
    with MockLLMServer([make_scenario(**SCRIPTED)]) as upstream:
        recording = Recording(upstream.url, tmp_path)
        try:
            seen = usage_of(sdk, recording.url, clients)
        finally:
            code, stderr = recording.stop()
    assert code == 0, stderr
    assert seen == (PROMPT, COMPLETION)
    (written,) = tmp_path.glob("*.yaml")
    assert f"usage: {{prompt_tokens: {PROMPT}, completion_tokens: {COMPLETION}}}" in written.read_text()
    with MockLLMServer([tmp_path]) as replay:
        assert usage_of(sdk, replay.url, clients) == (PROMPT, COMPLETION)


def usage_of(sdk: str, url: str, clients: list[Any]) -> tuple[int | None, int | None]:
    """The counts ``sdk`` reads at the end of a stream from ``url``."""
    if sdk == "openai-chat":
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)
        clients.append(client)
        options: Any = {"include_usage": True}
        chunks = list(
            client.chat.completions.create(model="m", messages=MESSAGES, stream=True, stream_options=options)
        )
        usage = chunks[-1].usage
        assert usage is not None
        return usage.prompt_tokens, usage.completion_tokens
    if sdk == "anthropic":
        messages = anthropic.Anthropic(base_url=url, api_key="x", max_retries=0)
        clients.append(messages)
        with messages.messages.stream(model="m", max_tokens=100, messages=MESSAGES) as stream:
            final = stream.get_final_message()
        return final.usage.input_tokens, final.usage.output_tokens
    local = ollama.Client(host=url)
    clients.append(local._client)
    last = list(local.chat(model="m", messages=MESSAGES, stream=True))[-1]
    return last.prompt_eval_count, last.eval_count


def test_the_readme_example_is_the_scenario_tested_here() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    (block,) = [b for b in re.findall(r"```yaml\n(.*?)```", readme, re.S) if "usage: {" in b]
    assert yaml.safe_load(block) == {**SCRIPTED, "name": "counted"}
    assert parse_scenarios(block)[0].usage == Usage(PROMPT, COMPLETION)


@pytest.mark.parametrize(
    ("usage", "message"),
    [
        ("{prompt_tokens: -1}", "s.yaml:3:24: usage.prompt_tokens: must be at least 0, not -1"),
        (
            "{completion_tokens: many}",
            "s.yaml:3:28: usage.completion_tokens: expected an integer, not 'many'",
        ),
        ("{completion_tokens: true}", "s.yaml:3:28: usage.completion_tokens: expected an integer, not True"),
        ("{}", "s.yaml:3:8: usage: {} should be non-empty"),
        ("{prompt: 3}", "s.yaml:3:9: usage.prompt: unknown key (allowed: completion_tokens, prompt_tokens)"),
    ],
)
def test_a_bad_usage_is_a_positioned_load_error(usage: str, message: str) -> None:
    with pytest.raises(ScenarioError) as raised:
        parse_scenarios(f"name: m\nreply: hi\nusage: {usage}\n", path="s.yaml")
    assert str(raised.value).startswith(message), str(raised.value)
