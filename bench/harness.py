"""The bench's processes: servers pinned to their core, the load client, CPU and RSS readings.

Shared by ``python -m bench`` and the cases in their own modules (``bench/zero.py``).
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SERVER_CPU, CLIENT_CPU = {0}, {1}
TICK = os.sysconf("SC_CLK_TCK")


# -- processes ------------------------------------------------------------------------------------


def tree(pid: int) -> list[int]:
    """``pid`` and its descendants (a server's workers)."""
    pids, index = [pid], 0
    while index < len(pids):
        try:
            children = Path(f"/proc/{pids[index]}/task/{pids[index]}/children").read_text().split()
        except OSError:
            children = []
        pids += [int(child) for child in children]
        index += 1
    return pids


def cpu_seconds(pid: int) -> float:
    """The CPU time of ``pid`` and its descendants."""
    total = 0
    for one in tree(pid):
        try:
            fields = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone since the listing
        total += int(fields[11]) + int(fields[12])
    return total / TICK


def rss_kb(pid: int) -> int:
    """The resident memory of ``pid`` and its descendants."""
    total = 0
    for one in tree(pid):
        try:
            lines = Path(f"/proc/{one}/status").read_text().splitlines()
        except OSError:
            continue
        total += next((int(line.split()[1]) for line in lines if line.startswith("VmRSS:")), 0)
    return total


def pinned(cpus: set[int]) -> Callable[[], None] | None:
    available = os.sched_getaffinity(0)
    if not cpus <= available or len(available) < 2:
        return None  # a one-core machine: run unpinned
    return lambda: os.sched_setaffinity(0, cpus)


@dataclass
class Running:
    name: str
    process: subprocess.Popen[str]
    port: int

    @property
    def pid(self) -> int:
        return self.process.pid


@contextmanager
def mockllm(
    scenarios: str, workdir: Path, *, workers: int = 1, cpus: set[int] | None = SERVER_CPU
) -> Iterator[Running]:
    """``mockllm serve`` of the scenarios in ``scenarios`` (YAML), on ``cpus`` (None: any)."""
    path = workdir / "bench.yaml"
    path.write_text(scenarios, encoding="utf-8")
    argv = [sys.executable, "-m", "mockllm.cli", "serve", "-q", "--port", "0", "--scenario", str(path)]
    if workers > 1:
        argv += ["--workers", str(workers)]
    with started("mockllm", argv, listening_port, "Listening on", cpus) as s:
        yield s


def listening_port(line: str) -> int:
    """The port of mockllm's ``Listening on http://127.0.0.1:PORT`` line (serve and record)."""
    return int(line.rsplit(":", 1)[1].split()[0])


@contextmanager
def ceiling(zero_tokens: int, paced_tokens: int, delay: float) -> Iterator[Running]:
    """The raw-asyncio ceiling (bench/ceiling.py) with this schedule, on the server's core."""
    argv = [sys.executable, "-m", "bench.ceiling", "--port", "0", "--tokens-zero", str(zero_tokens)]
    argv += ["--tokens-paced", str(paced_tokens), "--delay", str(delay)]
    with started("ceiling", argv, int, "", SERVER_CPU) as s:
        yield s


@contextmanager
def started(
    name: str, argv: list[str], port_of: Callable[[str], int], marker: str, cpus: set[int] | None
) -> Iterator[Running]:
    process = subprocess.Popen(
        argv,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        preexec_fn=pinned(cpus) if cpus is not None else None,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    try:
        for line in process.stdout:
            if line.startswith(marker):
                yield Running(name, process, port_of(line.strip()))
                break
        else:
            raise RuntimeError(f"{name} did not start: {argv}")
    finally:
        process.terminate()
        process.wait(10)


def client_argv(server: Running, model: str, streams: int, *extra: str) -> list[str]:
    """The load client's command line (bench/loadclient.py)."""
    port, count = str(server.port), str(streams)
    return [
        sys.executable,
        "-m",
        "bench.loadclient",
        "--port",
        port,
        "--model",
        model,
        "--streams",
        count,
        *extra,
    ]


# Frames a stream sends before its first token's: mockllm's chat stream opens with the role chunk
# (`delta: {role: assistant, content: ""}`) as the real API's does, the ceiling's with a token.
# Counting that chunk as a token would move every stream's pace by one gap.
LEAD = {"mockllm": 1, "ceiling": 0}


def client(
    server: Running,
    model: str,
    streams: int,
    frames: int,
    *extra: str,
    cpus: set[int] | None = CLIENT_CPU,
    timeout: float = 120,
) -> dict[str, Any]:
    """Run the load client (on ``cpus``; None: any) against ``server``: its figures, and the
    server's CPU and peak RSS growth while it ran."""
    lead = str(LEAD[server.name])
    argv = client_argv(server, model, streams, "--frames", str(frames), "--lead", lead, *extra)
    cpu0 = cpu_seconds(server.pid)
    peak = Peak(server.pid)
    with peak:
        done = subprocess.run(
            argv,
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            preexec_fn=pinned(cpus) if cpus is not None else None,
            timeout=timeout,
        )
    result: dict[str, Any] = json.loads(done.stdout)
    result["server_cpu_s"] = cpu_seconds(server.pid) - cpu0
    result["server_cpu_pct"] = 100 * result["server_cpu_s"] / result["wall_s"]
    result["server_rss_growth_kb_per_stream"] = (peak.max - peak.start) / streams
    return result


class Peak:
    """Samples the RSS of a process and its descendants every 20 ms while in use."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.start = self.max = rss_kb(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.max = max(self.max, rss_kb(self.pid))

    def __enter__(self) -> Peak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def median_of(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Each numeric figure's median over the runs (lists: those of the median-p99 run)."""
    keyed = sorted(results, key=lambda r: r.get("gap_ms_p99") or 0)
    merged: dict[str, Any] = dict(keyed[len(keyed) // 2])
    for key, value in results[0].items():
        numbers = [r[key] for r in results if isinstance(r.get(key), int | float)]
        if isinstance(value, int | float) and len(numbers) == len(results):
            merged[key] = statistics.median(numbers)
    merged["runs"] = len(results)
    return merged


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def healthy(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return sock.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False
