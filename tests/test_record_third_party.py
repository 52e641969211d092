"""``record --exact`` in front of a mock server no one here wrote: fakellm (from the package
index, FastAPI and uvicorn) as the upstream. Its streams are replayed byte for byte, and its
OpenAI and Anthropic streams read back into the structured form give the SDKs the same view."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mockllm import MockLLMServer

from .recorded import Recording, anthropic_view, openai_view

pytestmark = pytest.mark.functional

FAKELLM = shutil.which("fakellm", path=str(Path(sys.executable).parent))
CONFIG = """\
version: 1
rules:
  - name: greeting
    when: {messages_contain: "hello"}
    respond: {content: "Hi there! This is a mock response from fakellm."}
  - name: weather
    when: {messages_contain: "weather"}
    respond:
      tool_calls: [{name: get_weather, arguments: {city: Paris, unit: celsius}}]
  - name: limited
    when: {messages_contain: "limit"}
    respond: {status: 429, error: "Rate limit exceeded (mock)"}
"""
PROMPTS = ["hello there", "what is the weather?", "over the limit"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def fakellm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if FAKELLM is None:
        pytest.skip("fakellm is not installed (pip install fakellm)")
    config = tmp_path_factory.mktemp("fakellm") / "fakellm.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    port = free_port()
    process = subprocess.Popen(
        [FAKELLM, "serve", "--port", str(port), "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:  # fakellm prints nothing to wait for: poll its stats endpoint
        try:
            httpx.get(f"{url}/_fakellm/stats", timeout=1)
            break
        except httpx.HTTPError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise AssertionError(process.communicate()[1]) from None
            time.sleep(0.1)
    yield url
    process.terminate()
    process.wait(timeout=10)
    assert process.stderr is not None
    process.stderr.close()


def raw(base_url: str, path: str, prompt: str) -> tuple[int, bytes]:
    """The status and body bytes; the error rule's request does not stream (fakellm answers
    every streaming request with a 200 stream)."""
    body = {
        "model": "gpt-4o-mini",
        "max_tokens": 50,
        "stream": "limit" not in prompt,
        "messages": [{"role": "user", "content": prompt}],
    }
    with httpx.stream(
        "POST", f"{base_url}{path}", json=body, headers={"x-api-key": "k"}, timeout=5
    ) as response:
        return response.status_code, response.read()


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/messages"])
def test_exact_replays_fakellm_byte_for_byte(fakellm: str, tmp_path: Path, path: str) -> None:
    recording = Recording(fakellm, tmp_path, "--exact")
    try:
        seen = [raw(recording.url, path, prompt) for prompt in PROMPTS]
    finally:
        code, stderr = recording.stop()
    assert code == 0, stderr
    assert [status for status, _ in seen] == [200, 200, 429]
    assert b'"Hi' in seen[0][1]  # fakellm's stream of the greeting, a few words an event
    assert b"Rate limit exceeded (mock)" in seen[2][1]
    with MockLLMServer([tmp_path]) as replay:
        assert [raw(replay.url, path, prompt) for prompt in PROMPTS] == seen


def test_fakellm_streams_read_back_into_scenarios(fakellm: str, tmp_path: Path) -> None:
    readers = [(openai_view, p) for p in PROMPTS] + [(anthropic_view, p) for p in PROMPTS]
    recording = Recording(fakellm, tmp_path)
    try:
        seen = [read(recording.url, "gpt-4o-mini", prompt) for read, prompt in readers]
    finally:
        code, stderr = recording.stop()
    assert code == 0, stderr
    assert seen[0].text == "Hi there! This is a mock response from fakellm."
    assert seen[1].tool_calls == [("get_weather", '{"city": "Paris", "unit": "celsius"}')]
    files = sorted(tmp_path.glob("*.yaml"))
    assert not [f.name for f in files if "transcript:" in f.read_text(encoding="utf-8")]  # all structured
    with MockLLMServer([tmp_path]) as replay:
        assert [read(replay.url, "gpt-4o-mini", prompt) for read, prompt in readers] == seen
