"""``python -m bench.reliability``: what stays bounded when clients and processes misbehave.

Each case runs ``mockllm serve`` as a subprocess and measures one thing the README's
"Reliability" table states:

- ``idle``: at an open-file limit of ``--fd-limit`` (soft = hard, so serve cannot raise it),
  ``--connections`` clients connect; half send nothing, half trickle a header a byte a second.
  How fast and how ``/healthz`` answers meanwhile, how many log lines 3 s of it writes, and how
  long until the server has closed every one of them.
- ``half-close``: ``GET /healthz HTTP/1.0`` and then ``shutdown(SHUT_WR)``: the answer's status line.
- ``shutdown``: SIGTERM with ``--streams`` streams stalled for ever and ``--grace``: seconds to exit.
- ``workers``: ``--workers 2``; SIGKILL of a worker: seconds until its replacement answers;
  SIGKILL of the parent: seconds until both workers are gone.
- ``stuck``: ``--stuck`` clients (4 KB receive buffer) ask for a 200,000-token zero-delay reply and
  never read: the server's resident memory per stuck stream once every one is blocked on its
  reader (the kernel's socket buffers are not in it), and the ``max_lateness`` of paced streams
  (100 tokens, 10 ms apart) played beside them.
- ``call log``: ``--rounds`` rounds of ``--per-round`` requests at ``--max-calls``: the RSS after
  each round levels off once the log is full.

``--smoke`` runs everything tiny, so ``tests/test_bench_smoke.py`` keeps the script working.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
STALL = "reply: ab\nfaults: [{at: 1, stall: forever}]\n"
BODY = b'{"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": true}'
STREAM = (
    b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    b"Content-Length: %d\r\n\r\n%s" % (len(BODY), BODY)
)
LONG = 200_000
CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}


class Served:
    def __init__(self, *args: str, fd_limit: int | None = None) -> None:
        launcher = []
        if fd_limit is not None:
            launcher = [
                sys.executable,
                "-c",
                "import os, resource, sys; "
                f"resource.setrlimit(resource.RLIMIT_NOFILE, ({fd_limit}, {fd_limit})); "
                "os.execv(sys.argv[1], sys.argv[1:])",
            ]
        self.process = subprocess.Popen(
            [*launcher, sys.executable, "-m", "mockllm.cli", "serve", "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        for line in self.process.stdout:
            match = re.match(r"Listening on http://([\d.]+):(\d+)", line)
            if match:
                self.address = (match.group(1), int(match.group(2)))
                return
        raise SystemExit(self.process.stderr.read() if self.process.stderr else "serve did not start")

    @property
    def url(self) -> str:
        return f"http://{self.address[0]}:{self.address[1]}"

    def rss(self) -> int:
        """Resident bytes of the server process."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise SystemExit("no VmRSS")

    def calls(self) -> list[dict[str, Any]]:
        return httpx.get(f"{self.url}/_mockllm/calls", timeout=30).json()["calls"]  # type: ignore[no-any-return]

    def chat(self, model: str, *, stream: bool = True) -> None:
        httpx.post(
            f"{self.url}/v1/chat/completions", json={**CHAT, "model": model, "stream": stream}, timeout=30
        )


@contextlib.contextmanager
def served(*args: str, fd_limit: int | None = None) -> Iterator[Served]:
    server = Served(*args, fd_limit=fd_limit)
    try:
        yield server
    finally:
        if server.process.poll() is None:
            server.process.kill()
        server.process.communicate()


def healthz(address: tuple[str, int], timeout: float = 5.0) -> tuple[float, str]:
    """Seconds to the first line of the answer, and that line (or the error)."""
    start = time.monotonic()
    try:
        with socket.create_connection(address, timeout=timeout) as sock:
            sock.sendall(HEALTHZ)
            line = sock.recv(4096).split(b"\r\n")[0].decode() or "closed, no answer"
    except OSError as exc:
        line = type(exc).__name__
    return time.monotonic() - start, line


def pid_of(address: tuple[str, int]) -> int | None:
    with contextlib.suppress(OSError, ValueError), socket.create_connection(address, timeout=2) as sock:
        sock.sendall(HEALTHZ)
        data = b""
        while chunk := sock.recv(4096):
            data += chunk
        match = re.search(rb'"pid": (\d+)', data)
        return int(match.group(1)) if match else None
    return None


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    with contextlib.suppress(OSError, IndexError):
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    return False


def idle(connections: int, fd_limit: int, header_timeout: str) -> dict[str, object]:
    with served("-q", "--header-timeout", header_timeout, fd_limit=fd_limit) as server:
        assert server.process.stderr is not None
        stderr = server.process.stderr
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(stderr), daemon=True)
        reader.start()
        waiting = selectors.DefaultSelector()  # epoll: select() stops at descriptor 1,023
        socks = []
        for _ in range(connections):
            sock = socket.socket()
            sock.setblocking(False)
            sock.connect_ex(server.address)
            socks.append(sock)
            waiting.register(sock, selectors.EVENT_READ)
        opened = time.monotonic()
        during = healthz(server.address)
        trickling, header = socks[::2], HEALTHZ[:-4]
        for second in range(60):  # one byte a second, until the server has closed them all
            if not waiting.get_map():
                break
            for sock in trickling:
                if second < len(header) and sock.fileno() in waiting.get_map():
                    with contextlib.suppress(OSError):
                        sock.send(header[second : second + 1])
            until = opened + second + 1
            while waiting.get_map() and time.monotonic() < until:
                for key, _ in waiting.select(until - time.monotonic()):
                    sock = key.fileobj
                    assert isinstance(sock, socket.socket)
                    with contextlib.suppress(OSError):
                        if sock.recv(65536):
                            continue
                    waiting.unregister(sock)
        closed_after = time.monotonic() - opened
        left = len(waiting.get_map())
        after = healthz(server.address)
        logged = len(lines)
        for sock in socks:
            sock.close()
        server.process.send_signal(signal.SIGTERM)
        server.process.wait(30)
        reader.join(5)
    return {
        "healthz while they are open": f"{during[1]} in {during[0] * 1000:.0f} ms",
        "log lines written meanwhile": logged,
        "all closed by the server after": f"{closed_after:.1f} s"
        if not left
        else f"{left} still open at 60 s",
        "healthz after": f"{after[1]} in {after[0] * 1000:.0f} ms",
    }


def half_close() -> dict[str, object]:
    with served("-q") as server, socket.create_connection(server.address, timeout=5) as sock:
        sock.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
        sock.shutdown(socket.SHUT_WR)
        try:
            line = sock.recv(4096).split(b"\r\n")[0].decode() or "closed, no answer"
        except OSError as exc:
            line = type(exc).__name__
    return {"GET /healthz HTTP/1.0 + SHUT_WR": line}


def shutdown(streams: int, grace: str) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        scenario = Path(tmp) / "stall.yaml"
        scenario.write_text(STALL)
        with served("-q", "--grace", grace, "--scenario", str(scenario)) as server:
            socks = [socket.create_connection(server.address, timeout=10) for _ in range(streams)]
            for sock in socks:
                sock.sendall(STREAM)
            for sock in socks:
                sock.recv(65536)
            start = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            code = server.process.wait(60)
            elapsed = time.monotonic() - start
            for sock in socks:
                sock.close()
    return {f"SIGTERM, {streams} stalled streams, --grace {grace}": f"exit {code} after {elapsed:.2f} s"}


def workers() -> dict[str, object]:
    with served("-q", "--workers", "2", "--grace", "500ms") as server:
        pids: set[int] = set()
        for _ in range(100):
            if len(pids) == 2:
                break
            pids |= {pid for pid in [pid_of(server.address)] if pid}
        victim = min(pids)
        os.kill(victim, signal.SIGKILL)
        start = time.monotonic()
        replaced = None
        while time.monotonic() - start < 20:
            pid = pid_of(server.address)
            if pid is not None and pid not in pids:
                replaced = time.monotonic() - start
                pids.add(pid)
                break
        live = {pid for pid in pids if not gone(pid)}
        server.process.kill()
        start = time.monotonic()
        while any(not gone(pid) for pid in live) and time.monotonic() - start < 20:
            time.sleep(0.01)
        orphaned_for = time.monotonic() - start
        for pid in live:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    return {
        "SIGKILL of a worker: replacement answers after": f"{replaced:.2f} s" if replaced else "never (20 s)",
        "SIGKILL of the parent: workers gone after": f"{orphaned_for:.2f} s",
    }


def until(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit("timed out")
        time.sleep(0.1)


def stuck(count: int, tokens: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        long, paced = Path(tmp) / "long.yaml", Path(tmp) / "paced.yaml"
        long.write_text(json.dumps({"name": "long", "reply": "x" * tokens}))
        paced.write_text(json.dumps({"name": "paced", "reply": "y" * 100, "timing": {"per_token": "10ms"}}))
        with served("-q", "--scenario", str(paced), "--scenario", str(long)) as server:
            server.chat("paced")
            body = json.dumps({**CHAT, "model": "long"}).encode()
            request = (
                b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
            )
            before, started = server.rss(), time.monotonic()
            socks = []
            for _ in range(count):
                sock = socket.socket()
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                sock.connect(server.address)
                sock.sendall(request)
                socks.append(sock)

            def blocked() -> bool:
                calls = [c for c in server.calls() if c["scenario"] == "long"]
                return len(calls) == count and all(c["backpressure_wait"] > 0 for c in calls)

            until(blocked, 600)
            filled, grown = time.monotonic() - started, server.rss() - before
            late = []
            for _ in range(5):
                server.chat("paced")
                late.append(
                    [c for c in server.calls() if c["scenario"] == "paced"][-1]["max_lateness"] * 1000
                )
            for sock in socks:
                sock.close()
    head = f"{count} stuck readers of {tokens:,} zero-delay tokens"
    return {
        f"{head}: all blocked after": f"{filled:.1f} s",
        f"{head}: server RSS per stuck stream": f"{grown / count / 1024:.0f} KiB",
        f"{head}: paced streams beside them, max_lateness": ", ".join(f"{x:.1f}" for x in late) + " ms",
    }


def call_log(rounds: int, per_round: int, limit: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        fast = Path(tmp) / "fast.yaml"
        fast.write_text(json.dumps({"name": "fast", "reply": "ok"}))
        with served("-q", "--scenario", str(fast), "--max-calls", str(limit)) as server:
            sizes = []
            with httpx.Client(timeout=30) as client:
                for _ in range(rounds):
                    for _ in range(per_round):
                        client.post(f"{server.url}/v1/chat/completions", json={**CHAT, "stream": False})
                    sizes.append(server.rss() / 2**20)
            dropped = httpx.get(f"{server.url}/_mockllm/calls", timeout=30).json()["dropped"]
    head = f"--max-calls {limit:,}, {rounds} × {per_round:,} requests"
    return {
        f"{head}: RSS after each round": " → ".join(f"{s:.1f}" for s in sizes) + " MB",
        f"{head}: calls dropped from the log": f"{dropped:,}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.reliability", description=__doc__.split("\n")[0])
    parser.add_argument("--connections", type=int, default=1050)
    parser.add_argument("--fd-limit", type=int, default=1024)
    parser.add_argument("--header-timeout", default="10s")
    parser.add_argument("--streams", type=int, default=500)
    parser.add_argument("--grace", default="2s")
    parser.add_argument("--stuck", type=int, default=200)
    parser.add_argument("--tokens", type=int, default=LONG)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--per-round", type=int, default=2000)
    parser.add_argument("--max-calls", type=int, default=2000)
    parser.add_argument("--smoke", action="store_true", help="everything tiny: a few seconds in all")
    args = parser.parse_args()
    if args.smoke:
        args.connections, args.fd_limit, args.header_timeout, args.streams, args.grace = (
            40,
            64,
            "1s",
            10,
            "500ms",
        )
        args.stuck, args.tokens, args.rounds, args.per_round, args.max_calls = 5, 20_000, 2, 20, 10
    results: dict[str, object] = {}
    results |= {
        f"{args.connections} idle, fd limit {args.fd_limit}: {k}": v
        for k, v in idle(args.connections, args.fd_limit, args.header_timeout).items()
    }
    results |= half_close()
    results |= shutdown(args.streams, args.grace)
    results |= workers()
    results |= stuck(args.stuck, args.tokens)
    results |= call_log(args.rounds, args.per_round, args.max_calls)
    width = max(map(len, results))
    for key, value in results.items():
        print(f"{key:<{width}}  {value}")


if __name__ == "__main__":
    main()
