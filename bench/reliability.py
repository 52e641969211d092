"""``python -m bench.reliability``: what a hostile client costs a ``mockllm serve`` process.

- **Stuck readers**: N clients (4 KB receive buffer) ask for a 200,000-token zero-delay reply and
  never read. Reported: the server's resident memory per stuck stream once every one of them is
  blocked on its reader (the kernel's socket buffers are not in it), and the ``max_lateness`` of
  paced streams (100 tokens, 10 ms apart) played beside them.
- **Call log**: rounds of requests against ``--max-calls``; the RSS after each round levels off
  once the log is full.

Figures go to stdout; the README's "Reliability" section quotes them.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

LONG = 200_000
CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}


@contextmanager
def served(*args: str) -> Iterator[tuple[str, int]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "mockllm.cli", "serve", "--port", "0", "-q", *args],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    try:
        for line in process.stdout:
            match = re.match(r"Listening on (http://\S+)", line)
            if match:
                yield match.group(1), process.pid
                return
        raise SystemExit("mockllm serve did not start")
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise SystemExit("no VmRSS")


def calls(url: str) -> list[dict[str, Any]]:
    return httpx.get(f"{url}/_mockllm/calls", timeout=30).json()["calls"]  # type: ignore[no-any-return]


def until(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit("timed out")
        time.sleep(0.1)


def request(url: str, model: str) -> bytes:
    body = json.dumps({**CHAT, "model": model}).encode()
    host = url.removeprefix("http://")
    return (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def stuck_readers(count: int, folder: Path) -> None:
    (folder / "long.yaml").write_text(json.dumps({"name": "long", "reply": "x" * LONG}))
    (folder / "paced.yaml").write_text(
        json.dumps({"name": "paced", "reply": "y" * 100, "timing": {"per_token": "10ms"}})
    )
    with served("--scenario", str(folder / "paced.yaml"), "--scenario", str(folder / "long.yaml")) as (
        url,
        pid,
    ):
        httpx.post(f"{url}/v1/chat/completions", json={**CHAT, "model": "paced"}, timeout=30)
        before, started = rss(pid), time.monotonic()
        port = int(url.rsplit(":", 1)[1])
        sockets = []
        for _ in range(count):
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect(("127.0.0.1", port))
            sock.sendall(request(url, "long"))
            sockets.append(sock)

        def blocked() -> bool:
            long = [c for c in calls(url) if c["scenario"] == "long"]
            return len(long) == count and all(c["backpressure_wait"] > 0 for c in long)

        until(blocked, 600)
        filled = time.monotonic() - started
        grown = rss(pid) - before
        late = []
        for _ in range(5):
            httpx.post(f"{url}/v1/chat/completions", json={**CHAT, "model": "paced"}, timeout=30)
            late.append([c for c in calls(url) if c["scenario"] == "paced"][-1]["max_lateness"] * 1000)
        sent = sum(c["tokens_sent"] for c in calls(url) if c["scenario"] == "long") / count
        for sock in sockets:
            sock.close()
    print(f"stuck readers: {count} × {LONG:,}-token zero-delay replies, all blocked after {filled:.1f} s")
    print(
        f"  server RSS per stuck stream: {grown / count / 1024:.0f} KiB "
        f"(tokens written before blocking: {sent:,.0f})"
    )
    print(f"  paced streams beside them: max_lateness {', '.join(f'{x:.1f}' for x in late)} ms")


def call_log(rounds: int, per_round: int, limit: int, folder: Path) -> None:
    (folder / "fast.yaml").write_text(json.dumps({"name": "fast", "reply": "ok"}))
    with served("--scenario", str(folder / "fast.yaml"), "--max-calls", str(limit)) as (url, pid):
        sizes = []
        with httpx.Client(timeout=30) as client:
            for _ in range(rounds):
                for _ in range(per_round):
                    client.post(f"{url}/v1/chat/completions", json={**CHAT, "stream": False})
                sizes.append(rss(pid) / 2**20)
        dropped = httpx.get(f"{url}/_mockllm/calls", timeout=30).json()["dropped"]
    print(f"call log: --max-calls {limit:,}, {rounds} rounds of {per_round:,} requests")
    print(f"  RSS after each round: {' → '.join(f'{s:.1f}' for s in sizes)} MB; dropped {dropped:,}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stuck", type=int, default=200, help="stuck readers (default 200)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--per-round", type=int, default=2000)
    parser.add_argument("--max-calls", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        stuck_readers(args.stuck, Path(folder))
        call_log(args.rounds, args.per_round, args.max_calls, Path(folder))


if __name__ == "__main__":
    main()
