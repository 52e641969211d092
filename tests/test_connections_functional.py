"""Connections over raw sockets: the header and idle timeouts, half-closed clients, the limit."""

from __future__ import annotations

import json
import logging
import re
import resource
import select
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from mockllm.connections import HALF_CLOSE_WINDOW, REFUSAL_LOG_INTERVAL, REFUSED, Gate

from . import rawhttp
from .conftest import Serve
from .served import Served, start

pytestmark = pytest.mark.functional

HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"


def connect(url: str, timeout: float = 5.0) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=timeout)


def read_until_closed(sock: socket.socket, deadline: float = 5.0) -> tuple[bytes, float, rawhttp.Ending]:
    """Everything the server sends until it ends the connection, and when that was (seconds from
    the call); "timeout" if it is still open after ``deadline`` seconds."""
    start = time.monotonic()
    data = b""
    while True:
        sock.settimeout(max(0.01, start + deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            return data, time.monotonic() - start, "timeout"
        except ConnectionResetError:
            return data, time.monotonic() - start, "reset"
        if not chunk:
            return data, time.monotonic() - start, "fin"
        data += chunk


def read_response(sock: socket.socket) -> bytes:
    """One response with a Content-Length body, leaving the connection open."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(rawhttp.RawResponse(head, b"", []).header("content-length") or 0)
    while len(body) < length:
        body += sock.recv(65536)
    return head


# -- header timeout -----------------------------------------------------------------------------------


def test_header_timeout_closes_a_connection_that_trickles_its_headers(serve: Serve) -> None:
    server = serve(header_timeout=0.5)
    with connect(server.url) as sock:
        start = time.monotonic()
        sent = 0
        for byte in HEALTHZ[:-2]:  # never the blank line that ends the block
            try:
                sock.send(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += 1
            if select.select([sock], [], [], 0.05)[0]:  # the client's pace: 20 bytes a second
                break
        data, _, ending = read_until_closed(sock)
        elapsed = time.monotonic() - start
    assert data.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert ending == "fin"
    assert 0.4 <= elapsed < 2.5
    assert sent < len(HEALTHZ) - 2, "the server waited for the whole trickle"


def test_header_timeout_closes_a_connection_that_sends_nothing(serve: Serve) -> None:
    server = serve(header_timeout=0.5)
    with connect(server.url) as sock:
        data, elapsed, ending = read_until_closed(sock)
    assert data == b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    assert ending == "fin"
    assert 0.4 <= elapsed < 2.5


def test_header_timeout_counts_from_the_first_byte_of_a_later_request(serve: Serve) -> None:
    server = serve(header_timeout=0.5, idle_timeout=30)
    with connect(server.url) as sock:
        sock.sendall(HEALTHZ)
        assert read_response(sock).startswith(b"HTTP/1.1 200")
        sock.sendall(b"GET /heal")
        data, elapsed, ending = read_until_closed(sock)
    assert data.startswith(b"HTTP/1.1 408")
    assert (ending, 0.4 <= elapsed < 2.5) == ("fin", True)


def test_the_header_timeout_spares_slow_but_complete_requests_and_long_streams(serve: Serve) -> None:
    server = serve({"reply": "a b c d e f", "timing": {"per_token": "100ms"}}, header_timeout=0.3)
    request = rawhttp.request_bytes(f"{server.url}/v1/chat/completions", rawhttp.stream_body())
    with connect(server.url) as sock:
        for part in (request[:20], request[20:40], request[40:]):
            sock.sendall(part)
            time.sleep(0.1)  # the client's pace: 0.2 s for the whole request, within the timeout
        data, elapsed, ending = read_until_closed(sock)
    assert elapsed > 0.4, "the stream outlived the header timeout"
    assert ending == "fin"
    assert b"data: [DONE]" in data
    assert data.endswith(b"0\r\n\r\n")


# -- idle timeout -------------------------------------------------------------------------------------


def test_idle_timeout_closes_a_kept_alive_connection(serve: Serve) -> None:
    server = serve(idle_timeout=0.5, header_timeout=30)
    with connect(server.url) as sock:
        sock.sendall(HEALTHZ)
        assert read_response(sock).startswith(b"HTTP/1.1 200")
        data, elapsed, ending = read_until_closed(sock)
    assert (data, ending) == (b"", "fin")
    assert 0.4 <= elapsed < 2.5


# -- half-closed clients --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "request_bytes",
    [b"GET /healthz HTTP/1.0\r\n\r\n", HEALTHZ],
    ids=["http1.0", "http1.1-keep-alive"],
)
def test_a_half_closed_client_gets_its_answer(serve: Serve, request_bytes: bytes) -> None:
    server = serve()
    with connect(server.url) as sock:
        sock.sendall(request_bytes)
        sock.shutdown(socket.SHUT_WR)
        data, _, ending = read_until_closed(sock)
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.split(b"\r\n")[0] in (b"HTTP/1.0 200 OK", b"HTTP/1.1 200 OK")
    assert json.loads(body)["status"] == "ok"
    assert ending == "fin"


def test_a_half_closed_client_gets_a_whole_stream(serve: Serve) -> None:
    server = serve({"reply": "one two three", "timing": {"per_token": "20ms"}})
    with connect(server.url) as sock:
        sock.sendall(rawhttp.request_bytes(f"{server.url}/v1/chat/completions", rawhttp.stream_body()))
        sock.shutdown(socket.SHUT_WR)
        data, _, ending = read_until_closed(sock)
    head, _, body = data.partition(b"\r\n\r\n")
    response = rawhttp.RawResponse(head, body, [])
    assert response.status == 200
    assert response.chunks()[1], "the terminating chunk arrived"
    assert b"data: [DONE]" in response.payload
    assert ending == "fin"
    assert server.calls.last.outcome == "completed"


@pytest.mark.parametrize("sent", [b"", b"GET /healthz HTTP/1.1\r\nHo"], ids=["nothing", "half-a-header"])
def test_a_half_close_before_a_whole_request_closes_at_once(serve: Serve, sent: bytes) -> None:
    server = serve(header_timeout=30)
    with connect(server.url) as sock:
        sock.sendall(sent)
        sock.shutdown(socket.SHUT_WR)
        data, elapsed, ending = read_until_closed(sock)
    assert (data, ending) == (b"", "fin")
    assert elapsed < 2


def test_a_fin_long_after_the_request_is_a_client_giving_up(serve: Serve) -> None:
    """TCP cannot tell a half-close from a close; a FIN that comes well after the request (here:
    a client that gives up on a silent stream after 0.6 s) still cuts the stream."""
    server = serve({"reply": "never", "faults": [{"at": 0, "stall": "forever"}]})
    with connect(server.url) as sock:
        sock.sendall(rawhttp.request_bytes(f"{server.url}/v1/chat/completions", rawhttp.stream_body()))
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 OK")  # the headers, then silence
        time.sleep(HALF_CLOSE_WINDOW + 0.35)  # the client's own read timeout
        sock.shutdown(socket.SHUT_WR)
        server.calls.assert_client_aborted(within=2)


# -- the connection limit -----------------------------------------------------------------------------


@pytest.fixture
def sockets() -> Iterator[ExitStack]:
    with ExitStack() as stack:
        yield stack


def test_connections_past_the_limit_get_503_and_one_log_line(
    serve: Serve, sockets: ExitStack, caplog: pytest.LogCaptureFixture
) -> None:
    server = serve(max_connections=5)
    held = [sockets.enter_context(connect(server.url)) for _ in range(5)]
    for sock in held:  # answered, so the server has counted each of them
        sock.sendall(HEALTHZ)
        assert read_response(sock).startswith(b"HTTP/1.1 200")
    with caplog.at_level(logging.WARNING, logger="mockllm"):
        refused = []
        for _ in range(8):
            with connect(server.url) as extra:
                refused.append(read_until_closed(extra))
    assert [(data, ending) for data, _, ending in refused] == [(REFUSED, "fin")] * 8
    assert REFUSED.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
    warnings = [r.getMessage() for r in caplog.records if "--max-connections" in r.getMessage()]
    assert warnings == [
        "mockllm: 5 connections open, the --max-connections limit: refusing new ones with 503 "
        "(1 so far; this warning repeats at most every 10s)"
    ]
    held.pop().close()
    deadline = time.monotonic() + 5
    while True:  # the server notices the close on its own loop; then a new connection gets in
        with connect(server.url) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            status = read_until_closed(sock)[0][:12]
        if status == b"HTTP/1.1 200":
            break
        assert time.monotonic() < deadline, "a freed slot was never reused"


def test_the_gate_logs_at_most_once_an_interval_with_the_count_refused() -> None:
    now = [100.0]
    gate = Gate(1, lambda: now[0])
    assert gate.admit()
    records: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    handler = Collect()
    logger = logging.getLogger("mockllm")
    logger.addHandler(handler)
    try:
        assert [gate.admit() for _ in range(3)] == [False] * 3
        now[0] += REFUSAL_LOG_INTERVAL
        assert not gate.admit()
        gate.release()
        assert gate.admit()
    finally:
        logger.removeHandler(handler)
    assert [r.split("(")[1].split(";")[0] for r in records] == ["1 so far", "4 so far"]
    assert (gate.open, gate.refused) == (1, 4)


# -- at the open-file limit, as `mockllm serve` -------------------------------------------------------

#: Runs the command after it with the open-file limit at soft 256, hard 512.
LIMITED = [
    sys.executable,
    "-c",
    "import os, resource, sys; resource.setrlimit(resource.RLIMIT_NOFILE, (256, 512)); "
    "os.execv(sys.argv[1], sys.argv[1:])",
]


@pytest.mark.skipif(not Path("/proc/self/limits").exists(), reason="reads /proc/<pid>/limits")
def test_at_the_open_file_limit_the_server_refuses_politely_and_recovers(served: list[Served]) -> None:
    if resource.getrlimit(resource.RLIMIT_NOFILE)[1] < 1024:
        pytest.skip("this test opens 400 connections")
    server = start(served, "--header-timeout", "3s", "-q", launcher=LIMITED)
    limits = Path(f"/proc/{server.process.pid}/limits").read_text()
    assert re.search(r"Max open files\s+512\s+512\s", limits), "serve raised its soft limit to the hard one"
    with ExitStack() as stack:
        held = [stack.enter_context(connect(server.url)) for _ in range(400)]  # 512 - 128 = 384 fit
        with connect(server.url) as late:  # a health check now is refused at once, not left hanging
            late.sendall(HEALTHZ)
            assert read_until_closed(late, deadline=2)[0] == REFUSED
        endings = [read_until_closed(sock)[0][:12] for sock in held]  # until the header timeout
    assert endings.count(b"HTTP/1.1 503") == 16
    assert endings.count(b"HTTP/1.1 408") == 384
    with connect(server.url) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert read_until_closed(sock)[0].startswith(b"HTTP/1.1 200 OK")
    code, stderr = server.stop()
    assert code == 0
    assert "Too many open files" not in stderr
    assert stderr.count("the --max-connections limit") == 1
