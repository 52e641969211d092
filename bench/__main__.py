"""``python -m bench``: mockllm beside a raw-asyncio ceiling, on this machine, now.

The server under test runs on core 0 and the load client (bench/loadclient.py) on core 1, so
neither steals the other's CPU. Every case runs against both servers in the same run; the report
gives mockllm's figures and their ratio to the ceiling, since absolute numbers move with whatever
else a shared machine is doing. The cases:

- zero delay (bench/zero.py): a C client that only counts bytes, so the client's speed is not
  what is measured; rounds alternate between the two servers; the client's CPU is shown;
- paced streams at N = 1, 100, 1,000, the capacity search, time to first byte, held streams;
- the scale cases (bench/scale.py): ``--workers 1`` against ``--workers 2`` (unpinned: two
  workers need both cores), 10,000 streams at 100 ms per token, and the server CPU per request
  beside a bare aiohttp handler's (bench/floor.py).

Prints the tables, writes every figure to ``<out>/bench.json`` and a plot of the inter-token gap
distributions to ``<out>/gaps.png``. ``--smoke`` runs every case tiny (under a minute), so the
harness itself is tested by ``make test``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import proxy, scale, selection, zero
from .harness import (
    CLIENT_CPU,
    ROOT,
    SERVER_CPU,
    Running,
    ceiling,
    client,
    client_argv,
    free_port,
    healthy,
    median_of,
    mockllm,
    pinned,
    rss_kb,
)
from .report import table


@dataclass(frozen=True)
class Plan:
    runs: int
    zero_tokens: int
    zero_streams: int  # per round of the zero-delay case
    paced_tokens: int
    delay: float
    streams: tuple[int, ...]
    capacity: tuple[int, ...]
    held: int
    idle_requests: int
    launches: int
    fixture_cycles: int
    workers_capacity: tuple[int, ...]  # the N tried with --workers 1 and 2
    wide: tuple[int, int, float]  # streams, tokens, delay: the 10,000-stream case
    requests: int  # sequential requests of the per-request cost
    proxy_streams: tuple[int, ...]  # N of the record proxy's case
    selection: tuple[int, int]  # match scenarios, requests per run of the selection cost


FULL = Plan(
    runs=3,
    zero_tokens=10_000,
    zero_streams=30,
    paced_tokens=200,
    delay=0.010,
    streams=(1, 100, 1000),
    capacity=(250, 500, 750, 1000, 1500, 2000, 3000),
    held=1000,
    idle_requests=50,
    launches=5,
    fixture_cycles=20,
    workers_capacity=(250, 500, 750, 1000, 1500, 2000, 3000),
    wide=(10_000, 100, 0.1),
    requests=2000,
    proxy_streams=(1, 100),
    selection=(1000, 2000),
)
SMOKE = Plan(
    runs=1,
    zero_tokens=500,
    zero_streams=3,
    paced_tokens=20,
    delay=0.005,
    streams=(1, 20),
    capacity=(10,),
    held=20,
    idle_requests=5,
    launches=1,
    fixture_cycles=2,
    workers_capacity=(10,),
    wide=(50, 5, 0.05),
    requests=20,
    proxy_streams=(1, 5),
    selection=(50, 5),
)


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


# -- cases -----------------------------------------------------------------------------------------


def case_paced(plan: Plan, server: Running, streams: int) -> dict[str, Any]:
    ideal = plan.paced_tokens * plan.delay
    runs = []
    for _ in range(plan.runs):
        r = client(server, "paced", streams, plan.paced_tokens)
        r["ideal_s"] = ideal
        r["drift_pct_p50"] = 100 * (r["duration_s_p50"] / ideal - 1) if r["duration_s_p50"] else None
        r["drift_pct_max"] = 100 * (r["duration_s_max"] / ideal - 1) if r["duration_s_max"] else None
        # The pace alone (scale.paced_figures): the drift above counts the time to first byte
        # too, which is reported (and has its own target) separately.
        runs.append(scale.paced_figures(r, plan.paced_tokens, plan.delay))
    return median_of(runs)


def capacity(plan: Plan, server: Running) -> dict[str, Any]:
    """The largest N tried whose streams all keep pace and start within a second (scale.keeps_up),
    by the medians of ``plan.runs`` runs."""
    return scale.search(server, plan.paced_tokens, plan.delay, plan.capacity, CLIENT_CPU, plan.runs)


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
        text = scenarios(plan)
        for name in ("ceiling", "mockllm"):
            with serving(name, plan, workdir) as server:
                figures: dict[str, Any] = {"idle": case_idle(plan, server)}
                for streams in plan.streams:
                    figures[f"paced_{streams}"] = case_paced(plan, server, streams)
                if plan.capacity:
                    figures["capacity"] = capacity(plan, server)
            with serving(name, plan, workdir) as fresh:
                figures["held"] = case_held(plan, fresh)
            cases[name] = figures
        report["zero"] = zero.compare(plan.zero_tokens, plan.zero_streams, plan.runs, workdir)
        report["per_request"] = scale.per_request(plan.requests, text, workdir)
        report["workers"] = scale.workers_capacity(
            plan.paced_tokens, plan.delay, plan.workers_capacity, workdir, plan.runs
        )
        report["wide"] = scale.wide(*plan.wide, workdir)
        report["proxy"] = proxy.measure(plan.proxy_streams, workdir)
        cases["mockllm"]["launch"] = launch_to_ready(plan, workdir)
    cases["mockllm"]["fixture"] = fixture_cycle(plan)
    report["selection"] = selection.measure(*plan.selection)
    report["ratios"] = ratios(plan, report)
    return report


def serving(name: str, plan: Plan, workdir: Path) -> Any:
    if name == "ceiling":
        return ceiling(plan.zero_tokens, plan.paced_tokens, plan.delay)
    return mockllm(scenarios(plan), workdir)


def ratios(plan: Plan, report: dict[str, Any]) -> dict[str, float | None]:
    """mockllm's figures over the ceiling's (or two workers' over one's); None where the
    denominator read 0 (CPU is counted in 10 ms ticks: a short smoke run can read none)."""
    mock, ceil = report["cases"]["mockllm"], report["cases"]["ceiling"]
    out: dict[str, float | None] = {"zero_tokens_per_s": report["zero"]["ratio_median"]}
    for streams in plan.streams:
        key = f"paced_{streams}"
        out[f"{key}_gap_p99"] = share(mock[key]["gap_ms_p99"], ceil[key]["gap_ms_p99"])
        out[f"{key}_ttfb_p50"] = share(mock[key]["ttfb_ms_p50"], ceil[key]["ttfb_ms_p50"])
    if plan.capacity:
        out["capacity"] = share(mock["capacity"]["streams"], ceil["capacity"]["streams"])
    workers = report["workers"]
    out["workers_2_capacity"] = share(workers["workers_2"]["streams"], workers["workers_1"]["streams"])
    cost = report["per_request"]
    out["per_request_cpu"] = share(
        cost["mockllm"]["server_cpu_us_per_request"], cost["ceiling"]["server_cpu_us_per_request"]
    )
    return out


def share(part: float | None, whole: float | None) -> float | None:
    return part / whole if part is not None and whole else None


def machine() -> str:
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return f"{model}, {os.cpu_count()} cores, Linux {platform.release()}, Python {platform.python_version()}"


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
    print(table(report))
    print(
        f"\n{report['harness_s']:.0f}s; figures in {args.out / 'bench.json'}, plot in {args.out / 'gaps.png'}"
    )


if __name__ == "__main__":
    main()
