"""``python -m bench.latency``: does a latency model's scripted gap distribution reach the client?

Serves one scenario with ``timing: {per_token, distribution, stddev}`` to ``--streams`` concurrent
clients over real sockets, records when each token's bytes arrive, and compares the delivered
inter-token gaps with the gaps the timeline scripted (the same seed, so the same draws): mean,
standard deviation and deciles side by side, and a histogram of both (``--plot PATH``). Figures
to read, not a timed test; ``--smoke`` is a tiny run for the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import statistics
import time
from pathlib import Path
from typing import Any

import aiohttp

from mockllm import MockLLMServer
from mockllm.events import Token
from mockllm.loader import scenario_from_dict
from mockllm.timeline import build_timeline


def scenario(tokens: int, per_token: str, stddev: str, distribution: str) -> Any:
    timing = {"per_token": per_token, "distribution": distribution, "stddev": stddev, "seed": 11}
    return scenario_from_dict(
        {"reply": ["x"] * tokens, "timing": timing, "wire": {"flush": "event"}}, name="model"
    )


def scripted_gaps(built: Any) -> list[float]:
    times = [step.deadline for step in build_timeline(built) if isinstance(step.event, Token)]
    return [later - earlier for earlier, later in itertools.pairwise(times)]


async def _read(session: aiohttp.ClientSession, url: str) -> list[float]:
    """Arrival times of each token's chunk (the role chunk, finish and [DONE] left out)."""
    body = {"model": "model", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    arrivals: list[float] = []
    async with session.post(f"{url}/v1/chat/completions", json=body) as response:
        async for data in response.content.iter_any():
            now = time.perf_counter()
            arrivals += [now] * data.count(b'"delta":{"content":')
    return arrivals


async def _delivered(url: str, streams: int) -> list[float]:
    async with aiohttp.ClientSession() as session:
        runs = await asyncio.gather(*(_read(session, url) for _ in range(streams)))
    return [later - earlier for arrivals in runs for earlier, later in itertools.pairwise(arrivals)]


def summary(gaps: list[float]) -> dict[str, Any]:
    ms = [gap * 1000 for gap in gaps]
    return {
        "mean_ms": statistics.fmean(ms),
        "stdev_ms": statistics.stdev(ms),
        "deciles_ms": statistics.quantiles(ms, n=10),
    }


def measure(streams: int, tokens: int, per_token: str, stddev: str, distribution: str) -> dict[str, Any]:
    built = scenario(tokens, per_token, stddev, distribution)
    scripted = scripted_gaps(built)
    with MockLLMServer([built]) as server:
        delivered = asyncio.run(_delivered(server.url, streams))
    return {
        "plan": {
            "streams": streams,
            "tokens": tokens,
            "per_token": per_token,
            "stddev": stddev,
            "distribution": distribution,
        },
        "scripted": summary(scripted),
        "delivered": summary(delivered),
        "gaps": {"scripted": scripted, "delivered": delivered},
    }


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.4))
    gaps = report["gaps"]
    bins = 40
    ax.hist([g * 1000 for g in gaps["delivered"]], bins=bins, density=True, alpha=0.6, label="delivered")
    ax.hist(
        [g * 1000 for g in gaps["scripted"]],
        bins=bins,
        density=True,
        histtype="step",
        color="C2",
        label="scripted",
    )
    plan = report["plan"]
    ax.set_title(
        f"{plan['distribution']} gaps, mean {plan['per_token']}, stddev {plan['stddev']}, "
        f"{plan['streams']} streams"
    )
    ax.set_xlabel("gap between tokens (ms)")
    ax.set_ylabel("density")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--per-token", default="20ms")
    parser.add_argument("--stddev", default="10ms")
    parser.add_argument("--distribution", choices=["normal", "lognormal"], default="lognormal")
    parser.add_argument("--plot", type=Path, help="Write the histogram here (PNG).")
    parser.add_argument("--json", type=Path, help="Write the figures here.")
    parser.add_argument("--smoke", action="store_true", help="A tiny run (the test suite's).")
    args = parser.parse_args()
    if args.smoke:
        args.streams, args.tokens = 4, 40
    report = measure(args.streams, args.tokens, args.per_token, args.stddev, args.distribution)
    for side in ("scripted", "delivered"):
        figures = report[side]
        deciles = " ".join(f"{d:.1f}" for d in figures["deciles_ms"])
        print(
            f"{side:>9}: mean {figures['mean_ms']:.2f} ms  stdev {figures['stdev_ms']:.2f} ms  "
            f"deciles {deciles}"
        )
    if args.plot:
        plot(report, args.plot)
    if args.json:
        args.json.write_text(json.dumps({k: v for k, v in report.items() if k != "gaps"}, indent=2))


if __name__ == "__main__":
    main()
