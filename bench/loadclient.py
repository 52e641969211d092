"""The load client: raw sockets that only count SSE frames and timestamp reads.

Run as its own process (pinned to its own core by the harness) so that it is not the bottleneck:
``python -m bench.loadclient --port P --model paced --streams 1000 --frames 200``. It opens every
stream at once, sends one chat-completions request on each, and for every read that completes one
or more frames (``\\n\\n``) notes the time and how many. It prints one JSON object: per-stream
figures reduced to distributions, and its own CPU time, so a report can show the client kept up.

uvloop is used when installed (the default loop's per-read overhead doubled the wall time at
1,000 streams in earlier measurements).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import json
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Any

DONE = b"[DONE]"


def request(model: str) -> bytes:
    body = json.dumps(
        {"model": model, "messages": [{"role": "user", "content": "go"}], "stream": True}
    ).encode()
    head = (
        "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


@dataclass
class Stream(asyncio.Protocol):
    """One connection. ``arrivals`` holds (time, frames completed by that read)."""

    payload: bytes
    done: asyncio.Future[None]
    hold: bool = False
    sent: float = 0.0
    headers_at: float | None = None
    arrivals: list[tuple[float, int]] = field(default_factory=list)
    tail: bytes = b""
    received: int = 0
    transport: asyncio.Transport | None = None
    finished: bool = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not an asyncio.Transport subclass
        self.sent = time.perf_counter()
        transport.write(self.payload)

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        self.received += len(data)
        window = self.tail + data
        if self.headers_at is None:
            end = window.find(b"\r\n\r\n")
            if end < 0:
                self.tail = window
                return
            self.headers_at = now
            window = window[end + 4 :]
            self.tail = b""
            if self.hold and not self.done.done():
                self.done.set_result(None)
        frames = window.count(b"\n\n") - self.tail.count(b"\n\n")  # the tail was counted already
        if frames:
            self.arrivals.append((now, frames))
        if DONE in window:
            self.finished = True
            if not self.done.done():
                self.done.set_result(None)
            assert self.transport is not None
            self.transport.close()
        self.tail = window[-8:]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)


def quantiles(values: list[float], points: int = 100) -> list[float]:
    if len(values) < 2:
        return values * points if values else []
    return statistics.quantiles(values, n=points, method="inclusive")


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    payload = request(args.model)
    cpu0 = time.process_time()
    start = time.perf_counter()
    streams: list[Stream] = []
    connects = asyncio.Semaphore(args.connect_concurrency)

    async def one() -> Stream:
        async with connects:
            stream = Stream(payload, loop.create_future(), hold=args.hold > 0)
            await loop.create_connection(lambda: stream, "127.0.0.1", args.port)
        streams.append(stream)
        await stream.done
        return stream

    if args.sequential:
        for _ in range(args.streams):
            await one()
    else:
        await asyncio.gather(*(one() for _ in range(args.streams)))
    wall = time.perf_counter() - start
    if args.hold:
        print("HELD", flush=True)  # the harness samples the server's memory now
        sys.stdin.readline()
        for stream in streams:
            if stream.transport is not None:
                stream.transport.close()
    cpu = time.process_time() - cpu0
    return summarise(streams, args, wall, cpu)


def summarise(streams: list[Stream], args: argparse.Namespace, wall: float, cpu: float) -> dict[str, Any]:
    gaps: list[float] = []
    durations: list[float] = []
    paced: list[float] = []  # first token to last: the pacing alone, without the time to first byte
    ttfb: list[float] = []
    complete = 0
    frames_total = 0
    for stream in streams:
        times: list[float] = []
        for at, count in stream.arrivals:
            times.extend([at] * count)
        frames_total += len(times)
        if stream.finished and len(times) >= args.lead + args.frames:
            complete += 1
        if times:
            ttfb.append(times[0] - stream.sent)
        tokens = times[args.lead : args.lead + args.frames]
        gaps.extend(b - a for a, b in itertools.pairwise(tokens))
        if len(tokens) == args.frames:
            durations.append(tokens[-1] - stream.sent)
            paced.append(tokens[-1] - tokens[0])
    bytes_total = sum(s.received for s in streams)
    return {
        "streams": len(streams),
        "complete": complete,
        "headers": sum(s.headers_at is not None for s in streams),
        "frames": frames_total,
        "bytes": bytes_total,
        "wall_s": wall,
        "client_cpu_s": cpu,
        "client_cpu_pct": 100 * cpu / wall if wall else None,
        "gap_ms_mean": 1000 * statistics.fmean(gaps) if gaps else None,
        "gap_ms_p50": 1000 * percentile(gaps, 50) if gaps else None,
        "gap_ms_p99": 1000 * percentile(gaps, 99) if gaps else None,
        "gap_ms_quantiles": [1000 * q for q in quantiles(gaps)],
        "ttfb_ms_p50": 1000 * percentile(ttfb, 50) if ttfb else None,
        "ttfb_ms_max": 1000 * max(ttfb) if ttfb else None,
        "duration_s_p50": percentile(durations, 50),
        "duration_s_max": max(durations) if durations else None,
        "paced_s_p50": percentile(paced, 50),
        "paced_s_max": max(paced) if paced else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--streams", type=int, default=1)
    parser.add_argument("--frames", type=int, default=1, help="token frames each stream should carry")
    parser.add_argument(
        "--lead", type=int, default=0, help="frames before the first token's (not counted as tokens)"
    )
    parser.add_argument("--hold", type=int, default=0, help="only open the streams, then wait for stdin")
    parser.add_argument("--sequential", action="store_true", help="one stream after another")
    parser.add_argument("--connect-concurrency", type=int, default=256)
    args = parser.parse_args()
    # A collection of the objects of 1,000 connections pauses this process for over 10 ms, which
    # showed up as one late token on every stream at once (under either server). The client is
    # short-lived and makes little cyclic garbage: no collections while it measures.
    gc.disable()
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover - the bench extra installs it
        runner = asyncio.run
    print(json.dumps(runner(run(args))), flush=True)


if __name__ == "__main__":
    main()
