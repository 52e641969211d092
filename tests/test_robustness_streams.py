"""Clients that stop reading: bounded memory per stream, other streams keep their pace.

A real ``mockllm serve`` process, so its memory is its own; raw sockets with a 4 KB receive
buffer that send a request for a long zero-delay reply and never read a byte.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from . import rawhttp
from .served import Served

pytestmark = [pytest.mark.functional, pytest.mark.robustness]

#: Tokens in the long reply: past the timeline cache's limit, so each stream makes its steps lazily.
LONG = 200_000
STUCK = 100


def rss(pid: int) -> int:
    """Resident memory of a process, in bytes (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def calls(url: str) -> list[dict[str, object]]:
    return httpx.get(f"{url}/_mockllm/calls", timeout=10).json()["calls"]  # type: ignore[no-any-return]


def wait_for(condition: object, timeout: float = 30.0) -> None:
    """Poll ``condition()`` (a server we do not share a loop with) until true or ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Served]:
    (tmp_path / "long.yaml").write_text(json.dumps({"name": "long", "reply": "x" * LONG}))
    (tmp_path / "paced.yaml").write_text(
        json.dumps({"name": "paced", "reply": "y" * 100, "timing": {"per_token": "10ms"}})
    )
    served = Served("--scenario", str(tmp_path / "paced.yaml"), "--scenario", str(tmp_path / "long.yaml"))
    yield served
    served.stop()


def test_stuck_readers_cost_bounded_memory_and_others_keep_pace(server: Served) -> None:
    url = server.url
    httpx.post(f"{url}/v1/chat/completions", json=rawhttp.stream_body("paced"), timeout=10)  # warm up
    before = rss(server.process.pid)
    request = rawhttp.request_bytes(f"{url}/v1/chat/completions", rawhttp.stream_body("long"))
    stuck: list[socket.socket] = []
    try:
        for _ in range(STUCK):
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect(("127.0.0.1", int(url.rsplit(":", 1)[1])))
            sock.sendall(request)
            stuck.append(sock)

        def all_blocked() -> bool:
            long = [c for c in calls(url) if c["scenario"] == "long"]
            return len(long) == STUCK and all(c["backpressure_wait"] > 0 for c in long)  # type: ignore[operator]

        wait_for(all_blocked)
        grown = rss(server.process.pid) - before
        assert grown / STUCK < 1024 * 1024, f"{grown / STUCK / 1024:.0f} KiB per stuck stream"

        # A paced stream beside them keeps its pace, and the server answers at once.
        with httpx.stream(
            "POST", f"{url}/v1/chat/completions", json=rawhttp.stream_body("paced"), timeout=10
        ) as response:
            assert response.status_code == 200
            body = response.read()
        assert body.count(b'"content":"y"') == 100
        assert httpx.get(f"{url}/healthz", timeout=2).status_code == 200
        paced = [c for c in calls(url) if c["scenario"] == "paced"][-1]
        assert paced["outcome"] == "completed"
        assert paced["max_lateness"] < 0.05, paced["max_lateness"]  # the target is < 20 ms; see README
        long = [c for c in calls(url) if c["scenario"] == "long"]
        assert all(c["tokens_sent"] < LONG for c in long)  # nobody read them, so they wait
        assert all(c["outcome"] == "started" for c in long)
    finally:
        for sock in stuck:
            sock.close()
    # The stuck clients left: every stream ends as client-disconnected, none as a server error.
    wait_for(
        lambda: all(c["outcome"] == "client-disconnected" for c in calls(url) if c["scenario"] == "long")
    )
