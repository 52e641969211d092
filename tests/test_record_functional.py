"""Record and replay over real sockets: every shipped scenario served by one mockllm (the
upstream), recorded through ``mockllm record`` (a second process), then the recordings served
by a third: the official SDKs see the same text, tool calls, finish reason and exception, at
about the same pace."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import openai
import pytest

from mockllm import MockLLMServer, load_scenarios
from mockllm.state import Options

from .conftest import SCENARIOS
from .recorded import Recording, View, anthropic_view, ollama_view, openai_view
from .served import Served

pytestmark = pytest.mark.functional

SHIPPED = sorted(s.name for s in load_scenarios(sorted(SCENARIOS.glob("*.yaml"))))
TIME_SCALE = 0.1  # the 3 s stall is 0.3 s, under the clients' 1 s read timeout
#: How far a replayed gap between two text pieces may be from the upstream's. Generous: the
#: machine is shared; the stalls (0.2-0.3 s here) are what this tells apart from no wait.
GAP_SLACK = 0.08
READERS: dict[str, Callable[..., View]] = {
    "openai": openai_view,
    "anthropic": anthropic_view,
    "ollama": ollama_view,
}
#: The scenarios read through the other SDKs too (the openai SDK reads every one).
OTHERS = ["tool-call", "keepalive-comment", "error-event", "disconnect-fin", "stall", "rate-limited"]
CASES = [("openai", name) for name in SHIPPED] + [(sdk, n) for sdk in ("anthropic", "ollama") for n in OTHERS]


@pytest.fixture(scope="module")
def round_trip(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[tuple[str, str], View], Path]:
    """What each SDK saw of each case through the recorder, and the recordings' directory."""
    out = tmp_path_factory.mktemp("recordings")
    seen = {}
    with MockLLMServer(sorted(SCENARIOS.glob("*.yaml")), time_scale=TIME_SCALE) as upstream:
        recording = Recording(upstream.url, out)
        try:
            for sdk, name in CASES:
                seen[(sdk, name)] = READERS[sdk](recording.url, name, f"{sdk} asks {name}")
        finally:
            code, stderr = recording.stop()
        assert code == 0, stderr
        direct = {
            case: READERS[case[0]](upstream.url, case[1], f"{case[0]} asks {case[1]}") for case in CASES[:3]
        }
    assert {c: seen[c] for c in direct} == direct  # the proxy changes nothing a client sees
    return seen, out


@pytest.fixture(scope="module")
def replay(round_trip: tuple[dict[tuple[str, str], View], Path]) -> Iterator[MockLLMServer]:
    with MockLLMServer([round_trip[1]]) as server:
        yield server


def test_each_exchange_is_one_file_and_the_set_loads(
    round_trip: tuple[dict[tuple[str, str], View], Path],
) -> None:
    _, out = round_trip
    files = sorted(out.glob("*.yaml"))
    assert len(files) == len(CASES)
    assert not list(out.glob(".*"))  # no temporary file left behind
    assert len(load_scenarios([out])) == len(CASES)


@pytest.mark.parametrize(("sdk", "name"), CASES)
def test_the_replay_looks_the_same_to_the_sdk(
    round_trip: tuple[dict[tuple[str, str], View], Path], replay: MockLLMServer, sdk: str, name: str
) -> None:
    upstream = round_trip[0][(sdk, name)]
    replayed = READERS[sdk](replay.url, name, f"{sdk} asks {name}")
    assert replayed == upstream
    assert len(replayed.gaps()) == len(upstream.gaps())
    for ours, theirs in zip(replayed.gaps(), upstream.gaps(), strict=True):
        assert abs(ours - theirs) < GAP_SLACK, (replayed.gaps(), upstream.gaps())


SECRETS = {
    "bearer": "sk-proj-BearerSecret0123456789",
    "x-api-key": "sk-ant-api03-HeaderSecret0123456789",
    "cookie": "CookieSecret0123456789",
    "prompt": "sk-PromptSecret0123456789",
    "custom": "hunter2-custom-secret",
}
ECHO = {
    "name": "echo",
    "template": True,
    "reply": "You said: ${last_user}",
    "timing": {"per_token": "1ms"},
    "headers": {"Set-Cookie": f"session={SECRETS['cookie']}", "x-request-id": "req-42"},
}


@pytest.mark.parametrize("mode", [[], ["--exact"]])
def test_secrets_never_reach_a_recording(tmp_path: Path, mode: list[str]) -> None:
    prompt = f"my key is {SECRETS['prompt']} and my password is {SECRETS['custom']}, remember them"
    headers = {"x-api-key": SECRETS["x-api-key"], "Cookie": f"session={SECRETS['cookie']}"}
    with MockLLMServer([ECHO]) as upstream:
        recording = Recording(upstream.url, tmp_path, "--redact", r"hunter2-[\w-]+", *mode)
        try:
            sdk = openai.OpenAI(
                base_url=f"{recording.url}/v1",
                api_key=SECRETS["bearer"],
                default_headers=headers,
                max_retries=0,
            )
            messages = [{"role": "user", "content": prompt}]
            stream = sdk.chat.completions.create(model="echo", messages=messages, stream=True)  # type: ignore[arg-type]
            text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        finally:
            code, stderr = recording.stop()
    assert code == 0, stderr
    assert text == f"You said: {prompt}"  # the client saw the upstream's answer, secrets and all
    (written,) = tmp_path.iterdir()
    content = written.read_text(encoding="utf-8")
    for name, secret in SECRETS.items():
        assert secret not in content, name
        assert secret[8:] not in content, name  # nor a part of it
    assert "[REDACTED]" in content
    if mode:  # a key echoed one rune per event is in no read whole: the structured form redacts it
        assert "# not recorded exactly: a secret ran across the stream's events" in content
    assert "x-request-id: req-42" in content.lower()  # an allow-listed header is kept
    # The recording still answers the same request, whatever the secrets were.
    with MockLLMServer([tmp_path], options=Options(strict=True)) as replay:
        again = openai.OpenAI(base_url=f"{replay.url}/v1", api_key="other", max_retries=0)
        stream = again.chat.completions.create(model="echo", messages=messages, stream=True)  # type: ignore[arg-type]
        replayed = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert replayed == "You said: my key is [REDACTED] and my password is [REDACTED], remember them"


def raw_body(base_url: str, name: str) -> tuple[int, bytes, str | None]:
    """The status, the body's bytes as they arrived, and the error that ended the read, if any."""
    body = b""
    status = 0
    try:
        with (
            httpx.Client(timeout=1.0) as client,
            client.stream(
                "POST",
                f"{base_url}/v1/chat/completions",
                json={
                    "model": name,
                    "messages": [{"role": "user", "content": f"exactly {name}"}],
                    "stream": True,
                },
            ) as response,
        ):
            status = response.status_code
            for chunk in response.iter_raw():
                body += chunk
    except httpx.HTTPError as exc:
        return status, body, type(exc).__name__
    return status, body, None


def test_an_exact_recording_replays_byte_for_byte(tmp_path: Path) -> None:
    with MockLLMServer(sorted(SCENARIOS.glob("*.yaml")), time_scale=TIME_SCALE) as upstream:
        recording = Recording(upstream.url, tmp_path, "--exact")
        try:
            seen = {name: raw_body(recording.url, name) for name in SHIPPED}
        finally:
            code, stderr = recording.stop()
    assert code == 0, stderr
    files = sorted(tmp_path.glob("*.yaml"))
    assert len(files) == len(SHIPPED)
    assert all("transcript:" in f.read_text(encoding="utf-8") or "status:" in f.read_text() for f in files)
    with MockLLMServer([tmp_path]) as replay:
        replayed = {name: raw_body(replay.url, name) for name in SHIPPED}
    different = [name for name in SHIPPED if replayed[name] != seen[name]]
    assert different == []
    assert seen["disconnect-reset"][2] == "ReadError"  # the endings are in the comparison
    assert seen["stall-forever"] == (200, b"", "ReadTimeout")
    assert seen["rate-limited"][0] == 429


def test_serve_replays_what_it_recorded_and_forwards_the_rest(tmp_path: Path) -> None:
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    with MockLLMServer([{"name": "up", "reply": "From upstream."}]) as upstream:
        served = Served(
            "--scenario", str(recordings), "--upstream", upstream.url, "--record", str(recordings), "-q"
        )
        try:
            first = openai_view(served.url, "gpt-x", "What is new?")
            again = openai_view(served.url, "gpt-x", "What is new?")
            other = openai_view(served.url, "gpt-x", "Something else")
            calls = upstream.calls.call_count
        finally:
            code, stderr = served.stop()
    assert code == 0, stderr
    assert first == again == other == View("From upstream.", finish_reason="stop")
    assert calls == 2  # the repeated question was answered from its recording
    assert [p.name for p in sorted(recordings.iterdir())] == [
        "0001-openai-chat-what-is-new.yaml",
        "0002-openai-chat-something-else.yaml",
    ]


def test_sigterm_writes_the_exchange_in_flight_and_exits_0(tmp_path: Path) -> None:
    url_file = tmp_path / "url"
    out = tmp_path / "out"
    with MockLLMServer([{"name": "long", "reply": "x" * 1000, "timing": {"per_token": "20ms"}}]) as upstream:
        recording = Recording(upstream.url, out, "--grace", "200ms", "--url-file", str(url_file))
        assert url_file.read_text().strip() == recording.url
        assert httpx.get(f"{recording.url}/healthz").json()["recording"] == str(out)
        models = httpx.get(f"{recording.url}/v1/models").json()  # forwarded, and not written
        assert [m["id"] for m in models["data"]] == ["long"]
        body = {"model": "long", "stream": True, "messages": [{"role": "user", "content": "go on"}]}
        with httpx.stream("POST", f"{recording.url}/v1/chat/completions", json=body, timeout=5) as response:
            lines = response.iter_lines()
            assert next(lines).startswith("data: ")  # the stream is under way
            code, stderr = recording.stop()
            with pytest.raises(httpx.HTTPError):
                list(lines)  # cut when the grace ran out
    assert code == 0, stderr
    (written,) = out.iterdir()
    text = written.read_text(encoding="utf-8")
    assert "# incomplete: the recorder was stopped before the response ended" in text
    assert "incomplete: true" in text
    (scenario,) = load_scenarios([written])
    assert 0 < len(scenario.tokens) < 1000


def test_an_unreachable_upstream_is_a_502_in_the_api_s_shape_and_no_file(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    recording = Recording(f"http://127.0.0.1:{port}", tmp_path)
    try:
        response = httpx.post(f"{recording.url}/v1/messages", json={"model": "m", "messages": []})
    finally:
        code, stderr = recording.stop()
    assert code == 0, stderr
    assert response.status_code == 502
    assert response.json()["type"] == "error"  # Anthropic's error shape on its route
    assert "did not answer" in response.json()["error"]["message"]
    assert list(tmp_path.iterdir()) == []


def agent_turns(base_url: str) -> list[object]:
    """An agent's two calls: the question (a get_weather call back), then the tool's result."""
    sdk = openai.OpenAI(base_url=f"{base_url}/v1", api_key="x", max_retries=0, timeout=5)
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    messages: list[dict[str, object]] = [{"role": "user", "content": "What is the weather in Paris?"}]
    first = sdk.chat.completions.create(model="gpt-4o", messages=messages, tools=tools)  # type: ignore[arg-type]
    call = first.choices[0].message.tool_calls[0]  # type: ignore[index]
    messages += [
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": '{"temp": 18}'},
    ]
    second = sdk.chat.completions.create(model="gpt-4o", messages=messages, tools=tools)  # type: ignore[arg-type]
    return [
        (first.choices[0].finish_reason, call.function.name, call.function.arguments),  # type: ignore[union-attr]
        (second.choices[0].finish_reason, second.choices[0].message.content),
    ]


def test_a_recorded_conversation_answers_each_turn(tmp_path: Path) -> None:
    with MockLLMServer([SCENARIOS / "agent"]) as upstream:
        recording = Recording(upstream.url, tmp_path)
        try:
            seen = agent_turns(recording.url)
        finally:
            code, stderr = recording.stop()
    assert code == 0, stderr
    assert seen == [("tool_calls", "get_weather", '{"city":"Paris"}'), ("stop", "It is 18 °C in Paris.")]
    first, second = (load_scenarios([f])[0] for f in sorted(tmp_path.glob("*.yaml")))
    assert first.match is not None
    assert second.match is not None
    assert dict(first.match.conditions)["tool_result"] is False
    assert dict(second.match.conditions)["turn"] == (1, 1)
    with MockLLMServer([tmp_path], options=Options(strict=True)) as replay:
        assert agent_turns(replay.url) == seen
