"""The benchmark harness, run tiny, so it does not rot (``make bench`` runs it for real)."""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.loadclient import Stream, summarise

from .conftest import ROOT

pytestmark = pytest.mark.functional


def test_every_case_runs_against_both_servers(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "zero delay: tokens/s" in done.stdout
    assert "--workers 1 vs 2" in done.stdout
    report = json.loads((tmp_path / "bench.json").read_text())
    plan = report["plan"]
    for name in ("mockllm", "ceiling"):
        zero = report["zero"][name]
        assert zero["complete"] == plan["zero_streams"]
        assert zero["bytes_per_stream"] > plan["zero_tokens"] * len(b"data: {}")  # every token's frame
        assert zero["client_cpu_s"] >= 0
        cases = report["cases"][name]
        for streams in plan["streams"]:
            paced = cases[f"paced_{streams}"]
            assert paced["complete"] == streams, (name, streams)
            # every token frame arrived, and the gaps between them were measured
            assert paced["gap_ms_mean"] == pytest.approx(plan["delay"] * 1000, rel=0.5)
        assert cases["held"]["opened"] == plan["held"]
        assert cases["idle"]["complete"] == plan["idle_requests"]
    wide_streams = plan["wide"][0]
    for name in ("ceiling", "workers_1", "workers_2"):
        assert report["wide"][name]["complete"] == wide_streams, name
    for workers in ("workers_1", "workers_2"):
        assert report["workers"][workers]["by_n"]["10"]["complete"] == 10
    for name in ("ceiling", "floor", "mockllm"):
        assert report["per_request"][name]["requests_per_s"] > 0
    proxy = report["proxy"]
    assert proxy["recorded"] == sum(plan["proxy_streams"])  # the proxy wrote every exchange
    for n in plan["proxy_streams"]:
        assert proxy[str(n)]["proxied"]["complete"] == n
    assert set(report["selection"]) == {"last matches", "none matches"}
    launch = report["cases"]["mockllm"]["launch"]
    assert launch["ready_ms"] > launch["import_aiohttp_ms"] > 0
    assert (tmp_path / "gaps.png").read_bytes().startswith(b"\x89PNG")


def test_the_reliability_figures_run() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.reliability", "--smoke"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    figures = dict(line.rsplit("  ", 1) for line in done.stdout.splitlines())
    figures = {key.strip(): value for key, value in figures.items()}
    assert figures["GET /healthz HTTP/1.0 + SHUT_WR"] == "HTTP/1.0 200 OK"
    assert figures["40 idle, fd limit 64: healthz while they are open"].startswith("HTTP/1.1 503")
    assert figures["SIGTERM, 10 stalled streams, --grace 500ms"].startswith("exit 0 after")
    assert figures["5 stuck readers of 20,000 zero-delay tokens: server RSS per stuck stream"].endswith("KiB")
    assert figures["--max-calls 10, 2 × 20 requests: calls dropped from the log"] == "30"


def test_selection_bench_runs_and_picks_what_it_should() -> None:
    """bench/selection.py, tiny: it checks its own choices; its figures are read, not asserted."""
    from bench.selection import measure

    figures = measure(50, 5)
    assert set(figures) == {"last matches", "none matches"}


def test_a_latency_model_reaches_the_client() -> None:
    """bench/latency.py, small: the one real-time check of the latency models. The gaps the client
    sees have the scripted mean and spread, within generous bounds (the draws are exact on the
    manual clock: test_latency.py)."""
    from bench.latency import measure

    report = measure(streams=4, tokens=60, per_token="20ms", stddev="10ms", distribution="lognormal")
    scripted, delivered = report["scripted"], report["delivered"]
    assert delivered["mean_ms"] == pytest.approx(scripted["mean_ms"], rel=0.25)
    assert delivered["stdev_ms"] == pytest.approx(scripted["stdev_ms"], rel=0.5)


def test_lead_frames_are_not_counted_as_tokens() -> None:
    """mockllm's role chunk shares the first token's read; the pace starts at the first token."""
    loop = asyncio.new_event_loop()
    try:
        stream = Stream(payload=b"", done=loop.create_future(), finished=True)
    finally:
        loop.close()
    # a read with the role chunk and token 1 at 0.010 s, then one token every 10 ms up to token 4
    stream.arrivals = [(0.010, 2), (0.020, 1), (0.030, 1), (0.040, 1)]
    counted = summarise([stream], argparse.Namespace(frames=4, lead=1), wall=1.0, cpu=0.0)
    assert counted["paced_s_p50"] == pytest.approx(0.030)
    assert counted["gap_ms_mean"] == pytest.approx(10.0)
    assert counted["complete"] == 1
    miscounted = summarise([stream], argparse.Namespace(frames=4, lead=0), wall=1.0, cpu=0.0)
    assert miscounted["paced_s_p50"] == pytest.approx(0.020)  # one gap short: the bias --lead removes
