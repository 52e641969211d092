"""Real-time pacing over a real socket, with generous bounds (speed itself is measured in bench/)."""

from __future__ import annotations

import asyncio
import asyncio.selector_events
import itertools
import json
import socket
import statistics
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import pytest

from mockllm.match import Seen
from mockllm.selection import ScenarioSet
from mockllm.sink import ResponseSink

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


def slow_burst(monkeypatch: pytest.MonkeyPatch) -> None:
    """Requests for the model ``burst`` cost their handler 5 ms of CPU (in picking the scenario)."""
    pick = ScenarioSet.pick

    def slow_pick(self: ScenarioSet, header: str | None, seen: Seen | None = None, **kwargs: Any) -> object:
        if seen is not None and seen.conversation.model == "burst":
            end = time.perf_counter() + 0.005
            while time.perf_counter() < end:
                pass
        return pick(self, header, seen, **kwargs)

    monkeypatch.setattr(ScenarioSet, "pick", slow_pick)


def test_a_playing_stream_keeps_its_pace_through_a_burst_of_requests(
    serve: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    """asyncio runs timers only between passes over its ready callbacks, and requests that arrive
    together are one long pass of handlers. Here each burst request costs its handler 5 ms of CPU
    (80 of them: 400 ms): the stream already playing keeps its 10 ms pace instead of stalling."""
    slow_burst(monkeypatch)
    server = serve(
        {"name": "paced", "reply": "x" * 100, "timing": {"per_token": "10ms"}},
        {"name": "burst", "reply": "y"},
    )
    url = f"{server.openai_base_url}/chat/completions"
    paced: list[rawhttp.RawResponse] = []
    reader = threading.Thread(target=lambda: paced.append(rawhttp.post(url, rawhttp.stream_body("paced"))))
    reader.start()
    time.sleep(0.2)
    address = urlsplit(url)
    burst = [socket.create_connection((address.hostname, address.port)) for _ in range(80)]
    for sock in burst:  # all sent before the server has handled the first
        sock.sendall(rawhttp.request_bytes(url, rawhttp.stream_body("burst")))
    reader.join(timeout=10)
    for sock in burst:
        sock.close()
    arrivals = [at for at, data in paced[0].reads for _ in range(data.count(b'"content":"x"'))]
    assert len(arrivals) == 100
    # Stalled for the burst, the stream would be ~400 ms late. The server's own account (its
    # tokens wait for at most one 5 ms handler) is tighter than what this client sees: its reader
    # thread shares the GIL with the server's busy one, so a read waits up to a few switch
    # intervals (5 ms each).
    call = next(call for call in server.calls.wait() if call.scenario == "paced")
    assert call.tokens_sent == 100
    assert call.max_lateness < 0.03, call.max_lateness
    assert max(b - a for a, b in itertools.pairwise(arrivals)) < 0.2


def test_a_stream_that_ends_during_a_burst_sends_its_last_token_on_time(
    serve: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The end of a stream is due with its last token (the finish, then ``[DONE]``). The clock's
    tick writes them all at that deadline; handing the end to the stream's coroutine instead would
    put it behind the burst's handlers in the ready queue (at 1,000 streams on 2 cores the last
    token was ~100 ms late, p50, in ``python -m bench``). Each burst request here costs its
    handler 5 ms of CPU (80 of them: 400 ms), and the burst is sent when 5 of the 10 tokens left."""
    slow_burst(monkeypatch)
    server = serve(
        {"name": "paced", "reply": "x" * 10, "timing": {"per_token": "20ms"}},
        {"name": "burst", "reply": "y"},
    )
    url = f"{server.openai_base_url}/chat/completions"
    address = urlsplit(url)
    arrivals: list[float] = []  # one per token, then the [DONE]'s
    burst: list[socket.socket] = []
    with socket.create_connection((address.hostname, address.port)) as sock:
        sock.settimeout(10)
        sock.sendall(rawhttp.request_bytes(url, rawhttp.stream_body("paced")))
        seen = b""
        while b"[DONE]" not in seen:
            data = sock.recv(65536)
            assert data, "the stream ended early"
            seen += data
            now = time.perf_counter()
            arrivals += [now] * (data.count(b'"content":"x"') + data.count(b"[DONE]"))
            if len(arrivals) >= 5 and not burst:  # half way: the rest is due during the burst
                burst = [socket.create_connection((address.hostname, address.port)) for _ in range(80)]
                for other in burst:
                    other.sendall(rawhttp.request_bytes(url, rawhttp.stream_body("burst")))
    for other in burst:
        other.close()
    assert len(arrivals) == 11
    # The server's own account: when it wrote the first token and the last. Five tokens were due
    # in the 100 ms after the burst was sent; behind it the last would be ~400 ms late. (Not the
    # client's arrival times: this client thread shares the GIL with the server's busy one, and
    # sending the burst alone can take it most of a second.)
    call = next(call for call in server.calls.wait() if call.scenario == "paced")
    assert call.first_byte is not None
    assert call.last_byte is not None
    assert call.last_byte - call.first_byte < 9 * 0.02 + 0.07, call.last_byte - call.first_byte
    assert (call.outcome, call.tokens_sent) == ("completed", 10)
