"""``python -m bench``: mockllm beside a raw-asyncio ceiling, on this machine, now.

The server under test runs on core 0 and the load client (bench/loadclient.py) on core 1, so
neither steals the other's CPU. Every case runs against both servers in the same run; the report
gives mockllm's figures and their ratio to the ceiling, since absolute numbers move with whatever
else a shared machine is doing.

Prints a table, writes every figure to ``<out>/bench.json`` and a plot of the inter-token gap
distributions to ``<out>/gaps.png``. ``--smoke`` runs every case tiny (a few seconds), so the
harness itself is tested by ``make test``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SERVER_CPU, CLIENT_CPU = {0}, {1}
TICK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Plan:
    runs: int
    zero_tokens: int
    paced_tokens: int
    delay: float
    streams: tuple[int, ...]
    capacity: tuple[int, ...]
    held: int
    idle_requests: int
    launches: int
    fixture_cycles: int


FULL = Plan(3, 10_000, 200, 0.010, (1, 100, 1000), (250, 500, 750, 1000, 1500, 2000, 3000), 1000, 50, 5, 20)
SMOKE = Plan(1, 500, 20, 0.005, (1, 20), (), 20, 5, 1, 2)


def scenarios(plan: Plan) -> str:
    """The mockllm scenarios with the ceiling's schedule (bench/ceiling.py), selected by model."""
    ms = f"{plan.delay * 1000:g}ms"
    return f"""
- name: zero
  reply: "{"字" * plan.zero_tokens}"
- name: paced
  reply: "{"字" * plan.paced_tokens}"
  timing: {{first_token: {ms}, per_token: {ms}}}
- name: idle
  reply: "字字字字字"
- name: stall
  reply: "字"
  faults: [{{at: 0, stall: forever}}]
"""


# -- processes ------------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


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
def mockllm(plan: Plan, workdir: Path) -> Iterator[Running]:
    path = workdir / "bench.yaml"
    path.write_text(scenarios(plan), encoding="utf-8")
    argv = [sys.executable, "-m", "mockllm.cli", "serve", "-q", "--port", "0", "--scenario", str(path)]
    with started("mockllm", argv, lambda line: int(line.rsplit(":", 1)[1].split()[0]), "Listening on") as s:
        yield s


@contextmanager
def ceiling(plan: Plan) -> Iterator[Running]:
    argv = [
        sys.executable,
        "-m",
        "bench.ceiling",
        "--port",
        "0",
        "--tokens-zero",
        str(plan.zero_tokens),
        "--tokens-paced",
        str(plan.paced_tokens),
        "--delay",
        str(plan.delay),
    ]
    with started("ceiling", argv, int, "") as s:
        yield s


@contextmanager
def started(name: str, argv: list[str], port_of: Callable[[str], int], marker: str) -> Iterator[Running]:
    process = subprocess.Popen(
        argv,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        preexec_fn=pinned(SERVER_CPU),
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


def client(server: Running, model: str, streams: int, frames: int, *extra: str) -> dict[str, Any]:
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
            preexec_fn=pinned(CLIENT_CPU),
            timeout=120,
        )
    result: dict[str, Any] = json.loads(done.stdout)
    result["server_cpu_s"] = cpu_seconds(server.pid) - cpu0
    result["server_cpu_pct"] = 100 * result["server_cpu_s"] / result["wall_s"]
    result["server_rss_growth_kb_per_stream"] = (peak.max - peak.start) / streams
    return result


class Peak:
    """Samples a process's RSS every 20 ms while in use."""

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


# -- cases -----------------------------------------------------------------------------------------


def case_zero(plan: Plan, server: Running) -> dict[str, Any]:
    runs = []
    for _ in range(plan.runs):
        r = client(server, "zero", 1, plan.zero_tokens)
        r["tokens_per_s"] = plan.zero_tokens / r["duration_s_p50"]
        r["bytes_per_s"] = r["bytes"] / r["wall_s"]
        runs.append(r)
    return median_of(runs)


def case_paced(plan: Plan, server: Running, streams: int) -> dict[str, Any]:
    ideal = plan.paced_tokens * plan.delay
    runs = []
    for _ in range(plan.runs):
        r = client(server, "paced", streams, plan.paced_tokens)
        r["ideal_s"] = ideal
        r["drift_pct_p50"] = 100 * (r["duration_s_p50"] / ideal - 1) if r["duration_s_p50"] else None
        r["drift_pct_max"] = 100 * (r["duration_s_max"] / ideal - 1) if r["duration_s_max"] else None
        # The pace alone: first token to last against (tokens - 1) delays. The drift above counts
        # the time to first byte too, which is reported (and has its own target) separately.
        pace = (plan.paced_tokens - 1) * plan.delay
        r["pace_drift_pct_p50"] = 100 * (r["paced_s_p50"] / pace - 1) if r["paced_s_p50"] else None
        r["pace_drift_pct_max"] = 100 * (r["paced_s_max"] / pace - 1) if r["paced_s_max"] else None
        runs.append(r)
    return median_of(runs)


def capacity(plan: Plan, server: Running) -> dict[str, Any]:
    """The largest N (of those tried, ascending) whose gap p99 stays within 2 ms of the schedule."""
    limit = plan.delay * 1000 + 2
    best, tried = 0, {}
    for streams in plan.capacity:
        r = client(server, "paced", streams, plan.paced_tokens)
        tried[streams] = r["gap_ms_p99"]
        if r["complete"] < streams or r["gap_ms_p99"] > limit:
            break
        best = streams
    return {"streams": best, "limit_ms": limit, "gap_ms_p99_by_n": tried}


def case_idle(plan: Plan, server: Running) -> dict[str, Any]:
    return client(server, "idle", plan.idle_requests, 5, "--sequential")


def case_held(plan: Plan, server: Running) -> dict[str, Any]:
    """Open ``plan.held`` streams that stall forever; memory per open stream."""
    before = rss_kb(server.pid)
    hold = subprocess.Popen(
        client_argv(server, "stall", plan.held, "--hold", "1"),
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=pinned(CLIENT_CPU),
    )
    assert hold.stdin is not None
    assert hold.stdout is not None
    assert hold.stdout.readline().strip() == "HELD"
    time.sleep(0.2)
    during = rss_kb(server.pid)
    hold.stdin.write("\n")
    hold.stdin.flush()
    result: dict[str, Any] = json.loads(hold.stdout.readline())
    hold.wait(30)
    return {
        "streams": plan.held,
        "opened": result["headers"],
        "rss_before_kb": before,
        "rss_held_kb": during,
        "kb_per_stream": (during - before) / plan.held,
    }


def launch_to_ready(plan: Plan, workdir: Path) -> dict[str, Any]:
    """``mockllm serve`` from exec to the first answered /healthz; and bare ``import aiohttp``."""
    path = workdir / "bench.yaml"
    path.write_text(scenarios(plan), encoding="utf-8")
    readies, imports = [], []
    for _ in range(plan.launches):
        port = free_port()
        argv = [
            sys.executable,
            "-m",
            "mockllm.cli",
            "serve",
            "-q",
            "--port",
            str(port),
            "--scenario",
            str(path),
        ]
        start = time.perf_counter()
        process = subprocess.Popen(
            argv,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=pinned(SERVER_CPU),
        )
        try:
            while not healthy(port):
                time.sleep(0.002)
            readies.append(time.perf_counter() - start)
        finally:
            process.terminate()
            process.wait(10)
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-c", "import aiohttp.web"], check=True, preexec_fn=pinned(SERVER_CPU)
        )
        imports.append(time.perf_counter() - start)
    return {
        "ready_ms": 1000 * statistics.median(readies),
        "import_aiohttp_ms": 1000 * statistics.median(imports),
    }


def fixture_cycle(plan: Plan) -> dict[str, Any]:
    """In process: ``MockLLMServer`` (what the session fixture holds) started and stopped, and the
    per-test ``reset`` the ``mockllm`` fixture does, after one warm-up."""
    code = f"""
import json, statistics, time
from mockllm import MockLLMServer
MockLLMServer().start().stop()
cycles, resets = [], []
for _ in range({plan.fixture_cycles}):
    t = time.perf_counter()
    MockLLMServer().start().stop()
    cycles.append(time.perf_counter() - t)
with MockLLMServer() as server:
    for _ in range({plan.fixture_cycles}):
        t = time.perf_counter(); server.reset(); resets.append(time.perf_counter() - t)
ms = {{"start_stop_ms": statistics.median(cycles), "reset_ms": statistics.median(resets)}}
print(json.dumps({{key: 1000 * value for key, value in ms.items()}}))
"""
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return dict(json.loads(done.stdout))


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


# -- report ----------------------------------------------------------------------------------------


def run(plan: Plan) -> dict[str, Any]:
    report: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "plan": plan.__dict__,
        "cases": {},
    }
    cases = report["cases"]
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for name, serving in (("ceiling", ceiling(plan)), ("mockllm", mockllm(plan, workdir))):
            with serving as server:
                figures: dict[str, Any] = {"zero": case_zero(plan, server), "idle": case_idle(plan, server)}
                for streams in plan.streams:
                    figures[f"paced_{streams}"] = case_paced(plan, server, streams)
                if plan.capacity:
                    figures["capacity"] = capacity(plan, server)
            with ceiling(plan) if name == "ceiling" else mockllm(plan, workdir) as fresh:
                figures["held"] = case_held(plan, fresh)
            cases[name] = figures
        cases["mockllm"]["launch"] = launch_to_ready(plan, workdir)
    cases["mockllm"]["fixture"] = fixture_cycle(plan)
    report["ratios"] = ratios(plan, cases["mockllm"], cases["ceiling"])
    return report


def ratios(plan: Plan, mock: dict[str, Any], ceil: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"zero_tokens_per_s": mock["zero"]["tokens_per_s"] / ceil["zero"]["tokens_per_s"]}
    for streams in plan.streams:
        key = f"paced_{streams}"
        out[f"{key}_gap_p99"] = mock[key]["gap_ms_p99"] / ceil[key]["gap_ms_p99"]
    if plan.capacity:
        out["capacity"] = mock["capacity"]["streams"] / max(1, ceil["capacity"]["streams"])
    return out


def machine() -> str:
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return f"{model}, {os.cpu_count()} cores, Linux {platform.release()}, Python {platform.python_version()}"


#: The table's rows for each N of the paced case: title, figure, format.
PACED_ROWS = (
    ("gap mean ms", "gap_ms_mean", "{:.2f}"),
    ("gap p50 ms", "gap_ms_p50", "{:.2f}"),
    ("gap p99 ms", "gap_ms_p99", "{:.2f}"),
    ("pace drift p50 %", "pace_drift_pct_p50", "{:+.2f}"),
    ("pace drift max %", "pace_drift_pct_max", "{:+.2f}"),
    ("drift from request p50 %", "drift_pct_p50", "{:+.2f}"),
    ("drift from request max %", "drift_pct_max", "{:+.2f}"),
    ("TTFB p50 ms", "ttfb_ms_p50", "{:.2f}"),
    ("TTFB max ms", "ttfb_ms_max", "{:.2f}"),
    ("server CPU %", "server_cpu_pct", "{:.0f}"),
    ("client CPU %", "client_cpu_pct", "{:.0f}"),
    ("complete streams", "complete", "{:.0f}"),
)


def table(report: dict[str, Any], plan: Plan) -> str:
    mock, ceil = report["cases"]["mockllm"], report["cases"]["ceiling"]
    rows = [("figure", "mockllm", "ceiling", "ratio")]

    def row(label: str, m: float | None, c: float | None, fmt: str = "{:,.1f}") -> None:
        signed = fmt.startswith("{:+")  # a drift near zero: a ratio of two such means nothing
        ratio = f"{m / c:.2f}×" if m is not None and c and not signed else ""
        rows.append(
            (label, fmt.format(m) if m is not None else "-", fmt.format(c) if c is not None else "-", ratio)
        )

    row("zero delay: tokens/s", mock["zero"]["tokens_per_s"], ceil["zero"]["tokens_per_s"], "{:,.0f}")
    row("zero delay: MB/s", mock["zero"]["bytes_per_s"] / 1e6, ceil["zero"]["bytes_per_s"] / 1e6)
    for streams in plan.streams:
        m, c = mock[f"paced_{streams}"], ceil[f"paced_{streams}"]
        label = f"N={streams} @{plan.delay * 1000:g}ms"
        for title, key, fmt in PACED_ROWS:
            row(f"{label}: {title}", m[key], c[key], fmt)
    if plan.capacity:
        row(
            "capacity (streams, p99 ≤ +2 ms)",
            mock["capacity"]["streams"],
            ceil["capacity"]["streams"],
            "{:.0f}",
        )
    row("idle TTFB p50 ms", mock["idle"]["ttfb_ms_p50"], ceil["idle"]["ttfb_ms_p50"], "{:.3f}")
    row(f"held streams ({plan.held}): KB each", mock["held"]["kb_per_stream"], ceil["held"]["kb_per_stream"])
    row("serve launch → ready ms", mock["launch"]["ready_ms"], None)
    row("  (python -c 'import aiohttp.web' ms)", mock["launch"]["import_aiohttp_ms"], None)
    row("fixture: MockLLMServer start+stop ms", mock["fixture"]["start_stop_ms"], None, "{:.2f}")
    row("fixture: per-test reset ms", mock["fixture"]["reset_ms"], None, "{:.3f}")
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = [
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in rows
    ]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="every case, tiny: checks the harness works")
    parser.add_argument(
        "--out",
        type=Path,
        default=ROOT / "build" / "bench",
        help="where bench.json and gaps.png go (default build/bench/; bench/results/ holds the README's)",
    )
    args = parser.parse_args()
    plan = SMOKE if args.smoke else FULL
    started_at = time.perf_counter()
    report = run(plan)
    report["harness_s"] = time.perf_counter() - started_at
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    from .plot import plot

    plot(report, plan.streams, args.out / "gaps.png")
    print(f"{report['date']}  {report['machine']}")
    print(table(report, plan))
    print(
        f"\n{report['harness_s']:.0f}s; figures in {args.out / 'bench.json'}, plot in {args.out / 'gaps.png'}"
    )


if __name__ == "__main__":
    main()
