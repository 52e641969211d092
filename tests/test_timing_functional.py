"""Real-time pacing over a real socket, with generous bounds (speed itself is measured in bench/)."""

from __future__ import annotations

import asyncio
import asyncio.selector_events
import itertools
import json
import statistics

import pytest

from mockllm.streaming import ResponseSink

from . import rawhttp
from .conftest import Serve

pytestmark = pytest.mark.functional


def test_per_token_gaps_follow_the_schedule_without_drift(serve: Serve) -> None:
    tokens, gap = 300, 0.005  # 1.5 s: sleeping 5 ms after each write would add ~1 ms per token
    server = serve({"reply": "x" * tokens, "timing": {"first_token": "100ms", "per_token": "5ms"}})
    response = rawhttp.post(f"{server.openai_base_url}/chat/completions", rawhttp.stream_body())
    arrivals = []
    seen = 0
    for at, data in response.reads:
        count = data.count(b'"content":"x"')
        arrivals += [at] * count
        seen += count
    assert seen == tokens
    first = arrivals[0]
    assert 0.09 <= first <= 0.5
    # the last token is due 299 gaps after the first: absolute deadlines keep it there
    span = arrivals[-1] - first
    assert (tokens - 1) * gap - 0.01 <= span <= (tokens - 1) * gap * 1.15, span
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert 0.003 <= statistics.median(gaps) <= 0.0075
    # no point of the stream falls far behind its own schedule
    worst = max(at - (first + i * gap) for i, at in enumerate(arrivals))
    assert worst <= 0.2


def test_a_slow_reader_gets_every_byte_and_the_server_waits_for_it(
    serve: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Paced tokens go out from the clock's ticks straight to the transport while the reader keeps
    up; once it stops reading and the buffer passes the high-water mark, the stream waits for the
    drain instead of buffering the rest. Same bytes either way."""
    answers: list[bool] = []
    write_now = ResponseSink.write_now

    def recording(self: ResponseSink, data: bytes) -> bool:
        answers.append(write_now(self, data))
        return answers[-1]

    monkeypatch.setattr(ResponseSink, "write_now", recording)
    tokens = [f"{i:04d}" + "y" * 20_000 for i in range(300)]  # 6 MB at 1 ms a token
    server = serve({"reply": tokens, "timing": {"per_token": "1ms"}})
    response = rawhttp.post(
        f"{server.openai_base_url}/chat/completions", rawhttp.stream_body(), stall=0.6, timeout=10
    )
    chunks, terminated = response.chunks()
    assert terminated
    text = "".join(
        json.loads(line[6:])["choices"][0]["delta"].get("content") or ""
        for line in b"".join(chunks).split(b"\n\n")
        if line.startswith(b"data: {")
    )
    assert text == "".join(tokens)
    assert set(answers) == {True, False}  # both paths were taken
    assert server.calls.last.outcome == "completed"


@pytest.mark.parametrize(("first_token", "together"), [("0s", True), ("200ms", False)])
def test_headers_share_the_first_write_only_when_a_token_is_due_at_once(
    serve: Serve, monkeypatch: pytest.MonkeyPatch, first_token: str, together: bool
) -> None:
    """One send fewer per request when nothing is waited for; with a first-token delay the
    headers still go out at once, on their own, as a real API's do."""
    writes: list[bytes] = []
    write = asyncio.selector_events._SelectorSocketTransport.write

    def recording(self: asyncio.Transport, data: bytes) -> None:
        writes.append(bytes(data))
        write(self, data)  # type: ignore[arg-type]

    monkeypatch.setattr(asyncio.selector_events._SelectorSocketTransport, "write", recording)
    server = serve({"reply": "ab", "timing": {"first_token": first_token, "per_token": "50ms"}})
    response = rawhttp.post(f"{server.openai_base_url}/chat/completions", rawhttp.stream_body())
    assert response.status == 200
    head = [w for w in writes if w.startswith(b"HTTP/1.1 200")]
    assert len(head) == 1
    assert (b"data: " in head[0]) is together
