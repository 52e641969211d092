"""mockllm as a CI service: exec, wait, the control API, reload, graceful shutdown."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import anthropic
import httpx
import openai
import pytest
from openapi_spec_validator import validate

from . import rawhttp
from .conftest import SCENARIOS, Serve
from .hostile import laughs
from .served import MOCKLLM, Served, start

pytestmark = pytest.mark.functional

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


def mockllm(*args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MOCKLLM, *args], capture_output=True, text=True, timeout=60, **kwargs)  # type: ignore[call-overload, no-any-return]


# -- exec --------------------------------------------------------------------------------------------

SDK_SCRIPT = """
import os, sys, openai
client = openai.OpenAI()  # base URL and key from the environment mockllm exec sets
text = "".join(c.choices[0].delta.content or "" for c in client.chat.completions.create(
    model="slow", messages=[{"role": "user", "content": "hi"}], stream=True))
print(text)
print(os.environ["MOCKLLM_URL"], os.environ["ANTHROPIC_BASE_URL"], os.environ["OPENAI_API_KEY"])
from google import genai
assert "GEMINI_API_KEY" not in os.environ
with genai.Client() as gemini:  # GOOGLE_GEMINI_BASE_URL and GOOGLE_API_KEY
    assert gemini.models.generate_content(model="slow", contents="hi").text == text
sys.exit(int(sys.argv[1]))
"""


@pytest.mark.parametrize("status", [0, 3])
def test_exec_runs_an_sdk_script_and_passes_its_status_on(tmp_path: Path, status: int) -> None:
    script = tmp_path / "app.py"
    script.write_text(SDK_SCRIPT)
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")}
    env["GEMINI_API_KEY"] = "real-key"  # unset by exec: google-genai would warn that both are set
    result = mockllm(
        "exec",
        "--scenario",
        str(SCENARIOS / "slow.yaml"),
        "--time-scale",
        "0",
        "-q",
        "--",
        sys.executable,
        str(script),
        str(status),
        env=env,
    )
    assert result.returncode == status, result.stderr
    text, urls = result.stdout.splitlines()
    assert text.startswith("生成式语言模型")
    mockllm_url, anthropic_url, key = urls.split()
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", mockllm_url)
    assert anthropic_url == mockllm_url
    assert key == "mockllm-dummy-key"


EVERY_SDK_SCRIPT = """
import ollama, openai
messages = [{"role": "user", "content": "hi"}]
print(openai.AzureOpenAI().chat.completions.create(model="slow", messages=messages).choices[0].message.content[:3])
print(ollama.Client().chat(model="slow", messages=messages, stream=False).message.content[:3])
"""


def test_exec_points_the_azure_and_ollama_sdks_at_the_server_too(tmp_path: Path) -> None:
    script = tmp_path / "app.py"
    script.write_text(EVERY_SDK_SCRIPT)
    unset = ("OLLAMA_HOST", "AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_API_KEY", "OPENAI_API_VERSION")
    env = {k: v for k, v in os.environ.items() if k not in unset}
    args = ("--scenario", str(SCENARIOS / "slow.yaml"), "--time-scale", "0", "-q")
    result = mockllm("exec", *args, "--", sys.executable, str(script), env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["生成式", "生成式"]


@pytest.mark.parametrize("real", ["sk-real-secret-0123456789", ""])
def test_exec_replaces_a_real_or_empty_key_and_works_with_curl(real: str) -> None:
    # A real key must never reach the mock (its call log would show it); an empty one (a CI
    # secret that is not set) makes the SDKs refuse with "missing credentials".
    command = 'curl -s "$OPENAI_BASE_URL/models"; echo; echo "$OPENAI_API_KEY $ANTHROPIC_API_KEY"'
    env = {**os.environ, "OPENAI_API_KEY": real, "ANTHROPIC_API_KEY": real}
    result = mockllm("exec", "--", "sh", "-c", command, env=env)
    assert result.returncode == 0, result.stderr
    models, keys = result.stdout.splitlines()
    assert json.loads(models)["data"][0]["id"] == "default"
    assert keys == "mockllm-dummy-key mockllm-dummy-key"


def test_exec_gives_the_command_the_servers_api_key() -> None:
    command = 'curl -s -H "Authorization: Bearer $OPENAI_API_KEY" "$OPENAI_BASE_URL/models"'
    result = mockllm("exec", "--api-key", "k-123", "--", "sh", "-c", command)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["data"][0]["id"] == "default"


def test_exec_refuses_a_bad_scenario_before_running_the_command(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("reply: x\ntiming: {per_token: soon}\n")
    marker = tmp_path / "ran"
    result = mockllm("exec", "--scenario", str(bad), "--", "touch", str(marker))
    assert result.returncode == 1
    assert not marker.exists()
    assert f"{bad}:2:21: timing.per_token: 'soon' is not a duration" in result.stderr


def test_exec_reports_a_taken_port_and_a_missing_command() -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = mockllm("exec", "--port", str(port), "--", "true")
    assert result.returncode == 1
    assert "Address already in use" in result.stderr
    missing = mockllm("exec", "--", "no-such-command-here")
    assert missing.returncode == 1
    assert "cannot run 'no-such-command-here'" in missing.stderr


# -- serve --url-file, wait ----------------------------------------------------------------------------


def test_url_file_and_wait(tmp_path: Path, served: list[Served]) -> None:
    url_file = tmp_path / "run" / ".mockllm-url"
    server = start(served, "--url-file", str(url_file), "-q")
    assert url_file.read_text() == server.url + "\n"
    waited = mockllm("wait", "--url-file", str(url_file), "--timeout", "5s")
    assert (waited.returncode, waited.stdout.strip()) == (0, server.url)


def test_wait_times_out_with_the_reason(tmp_path: Path) -> None:
    result = mockllm("wait", "--url-file", str(tmp_path / "never"), "--timeout", "300ms")
    assert result.returncode == 1
    assert result.stderr.strip() == f"Error: the URL in {tmp_path / 'never'} was not ready after 0.3s"
    usage = mockllm("wait")
    assert usage.returncode == 2
    assert "give exactly one of --url and --url-file" in usage.stderr


# -- control API -----------------------------------------------------------------------------------


def test_put_scenarios_replaces_all_or_nothing(serve: Serve) -> None:
    server = serve({"name": "old", "reply": "old reply"})
    url = f"{server.url}/_mockllm/scenarios"
    good = "- name: new\n  reply: new reply\n- name: other\n  reply: x\n"
    assert httpx.put(url, content=good).json() == {"scenarios": ["new", "other"], "default": "new"}
    listed = httpx.get(url).json()
    assert listed["default"] == "new"
    assert [s["name"] for s in listed["scenarios"]] == ["new", "other"]
    bad = "- name: broken\n  reply: x\n  timing:\n    per_token: 10 parsecs\n- name: fine\n  reply: y\n"
    refused = httpx.put(url, content=bad)
    assert refused.status_code == 400
    assert refused.json()["error"] == {
        "message": "Invalid scenarios; the old ones are still served.",
        "problems": [
            "<request body>:4:16: timing.per_token: '10 parsecs' is not a duration (e.g. 100ms, 1.5s, 2m)"
        ],
    }
    answer = httpx.post(f"{server.openai_base_url}/chat/completions", json=CHAT)
    assert answer.json()["choices"][0]["message"]["content"] == "new reply"
    as_json = httpx.put(url, json={"name": "from-json", "reply": "j"})
    assert as_json.json()["scenarios"] == ["from-json"]


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        # hung the server: no /healthz, 7.3 GB in 100 s
        (
            laughs(9).encode(),
            "<request body>:5:25: more than 10,000 YAML nodes (aliases expanded): mockllm reads no more",
        ),
        # a 500 (KeyError: 'raw')
        (
            b"reply: abc\nfaults: [{at: 1, malformed: bogus}]\n",
            "<request body>:2:29: faults[0].malformed: 'bogus' is not one of invalid-json, truncated-json, "
            'not-json, missing-prefix, bad-utf8, bad-crc, or a mapping {raw: "..."}',
        ),
        # accepted, then a 500 on every request
        (
            b'reply: hi\nheaders: {X-A: "a\\r\\nb"}\n',
            "<request body>:2:16: headers.X-A: 'a\\r\\nb' cannot be sent as a header: it contains a "
            "control character (U+000D)",
        ),
        (
            b"reply: caf\xe9\n",
            "<request body>:1:11: not UTF-8 text: byte 0xe9 here is an invalid continuation byte "
            "(scenarios are UTF-8 YAML or JSON)",
        ),
    ],
)
def test_a_hostile_put_is_a_400_and_the_server_answers_at_once(
    serve: Serve, body: bytes, problem: str
) -> None:
    server = serve({"name": "old", "reply": "old reply"})
    refused = httpx.put(f"{server.url}/_mockllm/scenarios", content=body, timeout=10)
    assert refused.status_code == 400
    assert refused.json()["error"] == {
        "message": "Invalid scenarios; the old ones are still served.",
        "problems": [problem],
    }
    assert httpx.get(f"{server.url}/healthz", timeout=1).status_code == 200
    assert httpx.get(f"{server.url}/_mockllm/scenarios").json()["default"] == "old"
    assert server.errors == []


def test_put_reads_its_body_off_the_event_loop(serve: Serve, monkeypatch: pytest.MonkeyPatch) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from mockllm import control

    server = serve({"name": "old", "reply": "old reply"})
    reading, release = threading.Event(), threading.Event()
    read = control._scenario_set

    def held(body: bytes) -> object:
        reading.set()
        release.wait(10)
        return read(body)

    monkeypatch.setattr(control, "_scenario_set", held)
    with ThreadPoolExecutor(1) as pool:
        put = pool.submit(httpx.put, f"{server.url}/_mockllm/scenarios", content=b"reply: new\n", timeout=10)
        assert reading.wait(10)
        # the body is still being read, and the loop answers
        assert httpx.get(f"{server.url}/healthz", timeout=2).status_code == 200
        release.set()
        assert put.result().json() == {"scenarios": ["inline"], "default": "inline"}


def test_reset_config_and_calls(serve: Serve) -> None:
    server = serve({"reply": "ok", "sequence": [{"status": 503}, {}]})
    chat = f"{server.openai_base_url}/chat/completions"
    assert httpx.post(chat, json=CHAT).status_code == 503
    assert len(httpx.get(f"{server.url}/_mockllm/calls").json()["calls"]) == 1
    assert httpx.post(f"{server.url}/_mockllm/reset").json() == {"reset": True}
    assert httpx.get(f"{server.url}/_mockllm/calls").json()["calls"] == []
    assert httpx.post(chat, json=CHAT).status_code == 503  # the sequence started over
    config = httpx.get(f"{server.url}/_mockllm/config").json()
    assert config["scenarios"] == ["test"]
    assert config["pid"] == os.getpid()
    assert config["api_key_required"] is False


def test_openapi_document_is_valid_and_covers_every_route(serve: Serve) -> None:
    server = serve()
    spec = httpx.get(f"{server.url}/_mockllm/openapi.json").json()
    validate(spec)
    routes = {
        (route.method.lower(), route.resource.canonical)  # type: ignore[union-attr]
        for route in server.server.app.router.routes()
        if route.method != "HEAD"
    }
    documented = {(method, path) for path, item in spec["paths"].items() for method in item}
    assert routes == documented


def test_no_control_and_control_token(served: list[Served]) -> None:
    off = start(served, "--no-control", "-q")
    assert httpx.get(f"{off.url}/_mockllm/calls").status_code == 404
    guarded = start(served, "--control-token", "s3cret", "-q")
    assert httpx.get(f"{guarded.url}/_mockllm/calls").status_code == 401
    ok = httpx.get(f"{guarded.url}/_mockllm/calls", headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 200
    config = httpx.get(f"{guarded.url}/_mockllm/config", headers={"Authorization": "Bearer s3cret"}).json()
    assert "s3cret" not in json.dumps(config)


def test_api_key_gets_401_in_each_apis_own_shape(served: list[Served]) -> None:
    server = start(served, "--api-key", "sk-right", "-q")
    wrong_openai = openai.OpenAI(base_url=f"{server.url}/v1", api_key="sk-wrong", max_retries=0)
    with wrong_openai, pytest.raises(openai.AuthenticationError) as caught:
        wrong_openai.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    assert caught.value.body == {
        "message": "Incorrect API key provided.",
        "type": "invalid_request_error",
        "param": None,
        "code": "invalid_api_key",
    }
    wrong_anthropic = anthropic.Anthropic(base_url=server.url, api_key="sk-wrong", max_retries=0)
    with wrong_anthropic, pytest.raises(anthropic.AuthenticationError):
        wrong_anthropic.messages.create(model="m", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    with openai.OpenAI(base_url=f"{server.url}/v1", api_key="sk-right", max_retries=0) as good:
        assert good.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}]).choices
    with anthropic.Anthropic(base_url=server.url, api_key="sk-right", max_retries=0) as claude:
        reply = claude.messages.create(model="m", max_tokens=5, messages=[{"role": "user", "content": "x"}])
        assert reply.content


def test_non_loopback_host_warns(served: list[Served]) -> None:
    server = start(served, "--host", "0.0.0.0", "-q")
    assert server.url.startswith("http://0.0.0.0:") or server.url.startswith("http://127.0.0.1:")
    _, stderr = server.stop()
    assert "warning: listening on 0.0.0.0" in stderr


# -- reload --------------------------------------------------------------------------------------------


def test_reload_swaps_files_and_keeps_the_old_set_when_invalid(tmp_path: Path, served: list[Served]) -> None:
    scenario = tmp_path / "live.yaml"
    scenario.write_text("reply: first version\n")
    server = start(served, "--scenario", str(tmp_path), "--reload")
    chat = f"{server.url}/v1/chat/completions"

    def reply() -> str:
        return str(httpx.post(chat, json=CHAT).json()["choices"][0]["message"]["content"])

    def eventually(expected: str) -> None:
        deadline = time.monotonic() + 10
        while reply() != expected:
            assert time.monotonic() < deadline, f"never served {expected!r}"
            time.sleep(0.1)

    assert reply() == "first version"
    scenario.write_text("reply: second version\n")
    eventually("second version")
    scenario.write_text("reply: third\nfaults: [{at: 0, disconnect: rst}]\n")
    time.sleep(1.0)  # several reload polls
    assert reply() == "second version"
    _, stderr = server.stop()
    assert "scenario files changed but are invalid; keeping the old ones" in stderr
    assert (
        f"{scenario}:2:30: faults[0].disconnect: 'rst' is not one of truncate, fin, reset, mid-event; did you mean 'reset'?"
        in stderr
    )
    assert "reloaded 1 scenario(s): live" in stderr


# -- logging ----------------------------------------------------------------------------------------


def test_one_log_line_per_request_as_text_and_json(served: list[Served]) -> None:
    text = start(served)
    httpx.post(f"{text.url}/v1/chat/completions", json={**CHAT, "stream": True}, timeout=30)
    _, stderr = text.stop()
    line = next(entry for entry in stderr.splitlines() if "POST /v1/chat/completions" in entry)
    assert re.search(
        r"POST /v1/chat/completions scenario=default status=200 outcome=completed tokens=\d+ duration=", line
    )
    as_json = start(served, "--log-format", "json", "--time-scale", "0")
    httpx.post(f"{as_json.url}/v1/messages", json={**CHAT, "max_tokens": 5})
    _, stderr = as_json.stop()
    entries = [json.loads(entry) for entry in stderr.splitlines() if entry.startswith("{")]
    call = next(e for e in entries if e.get("path") == "/v1/messages")
    assert {k: call[k] for k in ("method", "scenario", "format", "status", "outcome")} == {
        "method": "POST",
        "scenario": "default",
        "format": "anthropic",
        "status": 200,
        "outcome": "completed",
    }


# -- shutdown -----------------------------------------------------------------------------------------


def test_sigterm_lets_running_streams_finish_then_exits_zero(tmp_path: Path, served: list[Served]) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text("reply: 'finishing this sentence'\ntiming: {per_token: 40ms}\n")  # ~1 s
    server = start(served, "--scenario", str(scenario), "--grace", "5s")
    results: list[rawhttp.RawResponse] = []
    reader = threading.Thread(
        target=lambda: results.append(
            rawhttp.post(f"{server.url}/v1/chat/completions", rawhttp.stream_body())
        )
    )
    reader.start()
    time.sleep(0.3)  # the stream is under way
    started = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    with pytest.raises(httpx.ConnectError):  # no longer accepting
        httpx.get(f"{server.url}/healthz")
    reader.join(10)
    code, stderr = server.stop(signalled=True)
    assert code == 0, stderr
    assert time.monotonic() - started < 5
    (response,) = results
    assert response.chunks()[1], "the stream ended cleanly"
    assert b"data: [DONE]" in response.payload


def test_sigterm_cuts_what_outlives_the_grace_period(served: list[Served], tmp_path: Path) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text("reply: ab\nfaults: [{at: 1, stall: forever}]\n")
    server = start(served, "--scenario", str(scenario), "--grace", "500ms")
    results: list[rawhttp.RawResponse] = []
    reader = threading.Thread(
        target=lambda: results.append(
            rawhttp.post(f"{server.url}/v1/chat/completions", rawhttp.stream_body(), timeout=10)
        )
    )
    reader.start()
    time.sleep(0.3)
    started = time.monotonic()
    code, _ = server.stop()
    reader.join(10)
    assert code == 0
    assert 0.4 <= time.monotonic() - started < 5
    assert results[0].ending in ("fin", "reset")
    assert not results[0].chunks()[1]


def test_sigterm_with_many_stalled_streams_takes_one_grace_period(
    served: list[Served], tmp_path: Path
) -> None:
    """aiohttp's shutdown waited the grace period twice for a handler that never ends."""
    scenario = tmp_path / "s.yaml"
    scenario.write_text("reply: ab\nfaults: [{at: 1, stall: forever}]\n")
    server = start(served, "--scenario", str(scenario), "--grace", "2s", "-q")
    request = rawhttp.request_bytes(f"{server.url}/v1/chat/completions", rawhttp.stream_body())
    host, port = server.url.removeprefix("http://").split(":")
    with contextlib.ExitStack() as stack:
        streams = [
            stack.enter_context(socket.create_connection((host, int(port)), timeout=10)) for _ in range(200)
        ]
        for sock in streams:
            sock.sendall(request)
        for sock in streams:  # every stream is under way: its first token arrived
            assert sock.recv(65536).startswith(b"HTTP/1.1 200 OK")
        started = time.monotonic()
        code, stderr = server.stop()
        elapsed = time.monotonic() - started
    assert code == 0, stderr
    assert 2 <= elapsed < 2 + 1.5


def test_exec_strict_answers_an_unscripted_request_with_a_404_that_explains() -> None:
    agent = str(Path(__file__).resolve().parent.parent / "scenarios" / "agent")
    body = '{"model": "m", "messages": [{"role": "user", "content": "hello"}]}'
    command = f"curl -s -w ' %{{http_code}}' -H 'Content-Type: application/json' -d '{body}' \"$OPENAI_BASE_URL/chat/completions\""
    result = mockllm("exec", "--strict", "--scenario", agent, "--", "sh", "-c", command)
    assert result.returncode == 0, result.stderr
    text, _, status = result.stdout.rpartition(" ")
    assert status == "404"
    assert (
        "ask-weather: last_user does not contain 'weather' (it was 'hello')"
        in json.loads(text)["error"]["message"]
    )
