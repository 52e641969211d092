"""``python -m bench.memory``: what one open stream costs the server, and where it goes.

``mockllm serve`` (``service.serve``, the CLI's own path: its garbage-collector tuning, its
listener) runs in a child process with a stall-forever scenario. This process opens one stream to
warm the server up, then ``--streams`` more, each one's headers read, and holds them all. Two
figures per open stream, each the difference between the child's state with the streams held and
before them, divided by their number:

- ``rss_kib``: the child's resident memory, from a run without tracing (tracemalloc costs memory
  of its own), which is what a user's machine pays;
- ``traced_kib``: Python's heap as tracemalloc counts it (a second run, traced from the start), and
  its split by the file that allocated it, so a cut shows where it came from. RSS moves in pages
  and with the allocator's arenas; the traced figure is exact and does not depend on the load
  of the machine.

``--detail N`` prints the N largest allocation sites (file:line) per stream as well.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import tracemalloc
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
STALL = "- name: stall\n  reply: 字\n  faults: [{at: 0, stall: forever}]\n"
BODY = b'{"model": "stall", "messages": [{"role": "user", "content": "hi"}], "stream": true}'
REQUEST = (
    b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    b"Content-Length: %d\r\n\r\n%s" % (len(BODY), BODY)
)


# -- the server (child process) -------------------------------------------------------------------


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def group(filename: str) -> str:
    """The allocating file, shortened: ``aiohttp/web_protocol.py``, ``mockllm/guards.py``. (String
    operations: a ``Path`` here interns its parts, which showed up as a kilobyte per stream.)"""
    parts = filename.split(os.sep)
    for index in range(len(parts) - 2, -1, -1):
        if parts[index] in ("mockllm", "aiohttp", "asyncio", "multidict", "yarl"):
            return "/".join(parts[index:])
    return parts[-1]


def snapshot(detail: bool) -> dict[str, Any]:
    gc.collect()
    figures: dict[str, Any] = {"rss_kib": rss_kib()}
    if tracemalloc.is_tracing():
        ignored = [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, __file__)]
        snap = tracemalloc.take_snapshot().filter_traces(ignored)
        by_file: dict[str, int] = {}
        for stat in snap.statistics("filename"):
            name = group(stat.traceback[0].filename)
            by_file[name] = by_file.get(name, 0) + stat.size
        figures["traced"] = by_file
        if detail:
            figures["lines"] = {
                f"{group(s.traceback[0].filename)}:{s.traceback[0].lineno}": s.size
                for s in snap.statistics("lineno")
            }
        if tracemalloc.get_traceback_limit() > 1:  # --where: the call chains of the largest sites
            figures["chains"] = {
                " < ".join(f"{group(f.filename)}:{f.lineno}" for f in s.traceback): s.size
                for s in snap.statistics("traceback")[:400]
            }
    return figures


def serve(scenario: Path, detail: bool) -> None:
    """Serve ``scenario`` as ``mockllm serve`` does; print a snapshot per line read from stdin."""
    from mockllm.service import ServeConfig
    from mockllm.service import serve as run

    async def main() -> None:
        loop = asyncio.get_running_loop()

        async def answer() -> None:  # on the loop: nothing else allocates meanwhile
            print(json.dumps(snapshot(detail)), flush=True)

        def commands() -> None:
            for _ in sys.stdin:
                asyncio.run_coroutine_threadsafe(answer(), loop).result()
            os.kill(os.getpid(), signal.SIGTERM)

        def ready(url: str) -> None:
            print(url, flush=True)
            threading.Thread(target=commands, daemon=True).start()

        await run(ServeConfig(scenarios=(scenario,), port=0, control=False), ready=ready)

    asyncio.run(main())


# -- the client (this process) ---------------------------------------------------------------------


class Child:
    def __init__(self, scenario: Path, *, trace: bool, detail: bool, frames: int = 1) -> None:
        argv = [sys.executable, *(["-X", f"tracemalloc={frames}"] if trace else [])]
        argv += ["-m", "bench.memory", "--serve", str(scenario), *(["--detail", "1"] if detail else [])]
        self.process = subprocess.Popen(
            argv,
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert self.process.stdout is not None
        url = self.process.stdout.readline().strip()
        host, port = url.rsplit("/", 1)[-1].rsplit(":", 1)
        self.address = (host, int(port))

    def snapshot(self) -> dict[str, Any]:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write("snap\n")
        self.process.stdin.flush()
        return dict(json.loads(self.process.stdout.readline()))

    def close(self) -> None:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.close()
        self.process.wait(30)
        self.process.stdout.close()


def open_streams(address: tuple[str, int], count: int) -> list[socket.socket]:
    """``count`` streams, each one's request sent and its response headers read."""
    socks = []
    for _ in range(count):
        sock = socket.create_connection(address, timeout=30)
        sock.sendall(REQUEST)
        socks.append(sock)
    for sock in socks:
        head = b""
        while b"\r\n\r\n" not in head:
            data = sock.recv(4096)
            if not data:
                raise RuntimeError(f"the server closed a stream before its headers: {head!r}")
            head += data
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"not a stream: {head!r}")
    return socks


def held(streams: int, *, trace: bool, detail: int = 0, frames: int = 1) -> dict[str, Any]:
    """One child: the per-stream growth of ``streams`` held streams."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < streams + 64:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, streams + 1024), hard))
    with tempfile.TemporaryDirectory() as tmp:
        scenario = Path(tmp) / "stall.yaml"
        scenario.write_text(STALL, encoding="utf-8")
        child = Child(scenario, trace=trace, detail=detail > 0, frames=frames)
        try:
            warm = open_streams(child.address, 1)
            before = child.snapshot()
            socks = open_streams(child.address, streams)
            during = child.snapshot()
            for sock in [*warm, *socks]:
                sock.close()
        finally:
            child.close()
    out: dict[str, Any] = {"streams": streams, "rss_kib": (during["rss_kib"] - before["rss_kib"]) / streams}
    if trace:
        files = set(before["traced"]) | set(during["traced"])
        growth = {f: (during["traced"].get(f, 0) - before["traced"].get(f, 0)) / streams for f in files}
        out["traced_kib"] = sum(growth.values()) / 1024
        out["traced_bytes_by_file"] = dict(sorted(growth.items(), key=lambda kv: -kv[1]))
        if detail:
            lines = set(before["lines"]) | set(during["lines"])
            by_line = {k: (during["lines"].get(k, 0) - before["lines"].get(k, 0)) / streams for k in lines}
            out["traced_bytes_by_line"] = dict(sorted(by_line.items(), key=lambda kv: -kv[1])[:detail])
        if frames > 1:
            chains = during["chains"]
            grown = {k: (v - before["chains"].get(k, 0)) / streams for k, v in chains.items()}
            out["traced_bytes_by_chain"] = dict(sorted(grown.items(), key=lambda kv: -kv[1])[: detail or 20])
    return out


def measure(streams: int, detail: int = 0, frames: int = 1) -> dict[str, Any]:
    """RSS per stream from an untraced run, the traced heap (and its split) from a traced one."""
    untraced = held(streams, trace=False)
    traced = held(streams, trace=True, detail=detail, frames=frames)
    return {**traced, "rss_kib": untraced["rss_kib"], "rss_kib_traced_run": traced["rss_kib"]}


def report(figures: dict[str, Any]) -> str:
    lines = [
        f"{figures['streams']} held streams, per stream: RSS {figures['rss_kib']:.1f} KiB, "
        f"Python heap (tracemalloc) {figures['traced_kib']:.2f} KiB"
    ]
    for name, size in figures["traced_bytes_by_file"].items():
        if abs(size) >= 16:
            lines.append(f"  {size:8.0f} B  {name}")
    for name, size in figures.get("traced_bytes_by_line", {}).items():
        lines.append(f"  {size:8.0f} B  {name}")
    for name, size in figures.get("traced_bytes_by_chain", {}).items():
        lines.append(f"  {size:8.0f} B  {name}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--detail", type=int, default=0, help="also the N largest allocation sites")
    parser.add_argument("--frames", type=int, default=1, help="with --detail: call chains this deep")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)  # the child
    args = parser.parse_args()
    if args.serve is not None:
        serve(args.serve, args.detail > 0)
        return
    figures = measure(args.streams, args.detail, args.frames)
    print(json.dumps(figures, indent=2) if args.json else report(figures))


if __name__ == "__main__":
    main()
