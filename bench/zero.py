"""The zero-delay case, measured so that the load client cannot be what limits it.

A Python client that parses frames tops out near 2 M tokens/s, about mockllm's own speed, so it
measured both servers at its speed. Here the client only counts bytes, in 1 MiB reads, until the
stream's ``data: [DONE]``: ``bench/zeroclient.c`` compiled with the system's C compiler when there
is one (into ``build/bench/``), else the same loop in Python (:func:`byte_counter`). The report
shows which, and the client's own CPU, beside the server's CPU time per token: that one is the
server's work alone and barely moves with the load of the machine.

``python -m bench.zero [--tokens N] [--repeat R]`` runs the case against the ceiling and mockllm
and prints both.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .harness import CLIENT_CPU, ceiling, cpu_seconds, mockllm, pinned

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SOURCE = HERE / "zeroclient.c"
DONE = b"data: [DONE]"


def compiled(build: Path = ROOT / "build" / "bench") -> Path | None:
    """The C client, compiled if it is missing or older than its source; None without a compiler."""
    binary = build / "zeroclient"
    if binary.exists() and binary.stat().st_mtime >= SOURCE.stat().st_mtime:
        return binary
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        return None
    build.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [compiler, "-O2", "-D_GNU_SOURCE", "-o", str(binary), str(SOURCE)], capture_output=True, text=True
    )
    return binary if done.returncode == 0 else None


def byte_counter(port: int, model: str, repeat: int) -> dict[str, Any]:
    """zeroclient.c's loop in Python: one stream at a time, 1 MiB reads, only looking for [DONE]."""
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": "go"}], "stream": True})
    request = (
        "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n{body}"
    ).encode()
    cpu0 = time.process_time()
    seconds, total = [], 0
    for _ in range(repeat):
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            start = time.perf_counter()
            sock.sendall(request)
            tail = b""
            while True:
                data = sock.recv(1 << 20)
                if not data:
                    raise RuntimeError("the stream ended without [DONE]")
                total += len(data)
                if DONE in tail + data[:16] or DONE in data:
                    break
                tail = data[-16:]
            seconds.append(time.perf_counter() - start)
    return {"seconds": seconds, "bytes": total, "client_cpu_s": time.process_time() - cpu0}


def client_argv(port: int, model: str, repeat: int, *, python: bool = False) -> tuple[list[str], str]:
    """The client's command line, and which client it is."""
    binary = None if python else compiled()
    if binary is not None:
        return [str(binary), str(port), model, str(repeat)], "C (bench/zeroclient.c)"
    argv = [sys.executable, "-m", "bench.zero", "--client", str(port), model, str(repeat)]
    return argv, "Python byte counter"


def measure(
    pid: int, port: int, model: str, tokens: int, repeat: int, *, python: bool = False
) -> dict[str, Any]:
    """``repeat`` zero-delay streams of ``tokens`` tokens, one after another, from the server
    ``pid`` on ``port``: the median stream's tokens/s, the server's CPU per token, the client's CPU."""
    argv, kind = client_argv(port, model, repeat, python=python)
    cpu0 = cpu_seconds(pid)
    done = subprocess.run(
        argv, cwd=ROOT, capture_output=True, text=True, check=True, preexec_fn=pinned(CLIENT_CPU), timeout=300
    )
    server_cpu = cpu_seconds(pid) - cpu0
    result = json.loads(done.stdout)
    seconds = result["seconds"]
    wall = sum(seconds)
    return {
        "client": kind,
        "streams": repeat,
        "complete": len(seconds),
        "tokens": tokens,
        "bytes_per_stream": result["bytes"] / repeat,
        "duration_s_p50": statistics.median(seconds),
        "tokens_per_s": tokens / statistics.median(seconds),
        "bytes_per_s": result["bytes"] / wall,
        "server_cpu_s": server_cpu,
        "server_cpu_us_per_token": 1e6 * server_cpu / (tokens * repeat),
        "client_cpu_s": result["client_cpu_s"],
        "client_cpu_pct": 100 * result["client_cpu_s"] / wall,
    }


def compare(tokens: int, streams: int, rounds: int, workdir: Path, *, python: bool = False) -> dict[str, Any]:
    """The ceiling and mockllm side by side: ``rounds`` rounds of ``streams`` streams each,
    alternating between the two servers (this machine's speed drifts by 2x between minutes, so
    each round's ratio compares like with like); each server's median round, and the median of
    the rounds' ratios."""
    scenario = f'- name: zero\n  reply: "{"字" * tokens}"\n'
    with ceiling(tokens, 1, 0.01) as ceil, mockllm(scenario, workdir) as mock:
        servers = {"ceiling": ceil, "mockllm": mock}
        rounds_of: dict[str, list[dict[str, Any]]] = {name: [] for name in servers}
        for server in servers.values():  # warm-up: the first stream builds the timeline
            measure(server.pid, server.port, "zero", tokens, 2, python=python)
        for _ in range(rounds):
            for name, server in servers.items():
                rounds_of[name].append(
                    measure(server.pid, server.port, "zero", tokens, streams, python=python)
                )
    ratios = [
        m["tokens_per_s"] / c["tokens_per_s"]
        for m, c in zip(rounds_of["mockllm"], rounds_of["ceiling"], strict=True)
    ]
    figures: dict[str, Any] = {}
    for name, runs in rounds_of.items():
        median = sorted(runs, key=lambda r: r["tokens_per_s"])[len(runs) // 2]
        figures[name] = {
            **median,
            "rounds": len(runs),
            "tokens_per_s_rounds": [r["tokens_per_s"] for r in runs],
        }
    figures["ratio_rounds"] = ratios
    figures["ratio_median"] = statistics.median(ratios)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.zero", description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=30, help="streams per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, alternating the two servers")
    parser.add_argument("--python-client", action="store_true", help="the Python byte counter, not C")
    parser.add_argument("--client", nargs=3, metavar=("PORT", "MODEL", "REPEAT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        port, model, repeat = args.client
        print(json.dumps(byte_counter(int(port), model, int(repeat))))
        return
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        figures = compare(args.tokens, args.repeat, args.rounds, Path(tmp), python=args.python_client)
    print(json.dumps(figures, indent=2))
    rounds = ", ".join(f"{ratio:.2f}" for ratio in figures["ratio_rounds"])
    print(f"mockllm / ceiling tokens/s: {figures['ratio_median']:.2f}× (rounds: {rounds})", file=sys.stderr)


if __name__ == "__main__":
    main()
