"""The record proxy's cost: what ``mockllm record`` in front of an API adds to each chunk.

The upstream is ``mockllm serve`` with a paced scenario (200 tokens at 10 ms), on the server's
core, as is the proxy; the load client on the other core reads the same streams once straight
from the upstream and once through the proxy. The upstream's schedule runs from the request it
gets, so the difference in the first and the last token's arrival (from the client's request)
is what the proxy adds to a chunk, the upstream connection included for the first.

``python -m bench.proxy`` prints the figures; ``python -m bench`` reports them.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

from .harness import SERVER_CPU, client, listening_port, mockllm, started
from .scale import paced_scenario

TOKENS, DELAY = 200, 0.010


def measure(
    streams: tuple[int, ...], workdir: Path, tokens: int = TOKENS, delay: float = DELAY
) -> dict[str, Any]:
    """For each N of ``streams``: the client's figures direct and through the proxy, and the
    first and the last token's added milliseconds (medians over the streams); ``recorded``: the
    files the proxy wrote (one per exchange)."""
    out: dict[str, Any] = {}
    recordings = workdir / "recorded"
    with mockllm(paced_scenario(tokens, delay), workdir) as upstream:
        argv = [sys.executable, "-m", "mockllm.cli", "record", "-q", "--port", "0"]
        argv += ["--upstream", f"http://127.0.0.1:{upstream.port}", "--out", str(recordings)]
        with started("mockllm", argv, listening_port, "Listening on", SERVER_CPU) as proxy:
            for n in streams:
                direct = client(upstream, "paced", n, tokens)
                proxied = client(proxy, "paced", n, tokens)
                out[str(n)] = {
                    "direct": direct,
                    "proxied": proxied,
                    "first_token_added_ms": proxied["ttfb_ms_p50"] - direct["ttfb_ms_p50"],
                    "last_token_added_ms": 1000 * (proxied["duration_s_p50"] - direct["duration_s_p50"]),
                }
    # Once the proxy has stopped (SIGTERM: it writes what is in flight), a file per exchange.
    out["recorded"] = len(list(recordings.glob("*.yaml")))
    return out


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        figures = measure((1, 100), Path(tmp))
    print(f"{figures.pop('recorded')} exchanges recorded")
    for n, f in figures.items():
        d, p = f["direct"], f["proxied"]
        print(
            f"N={n}: first token +{f['first_token_added_ms']:.2f} ms,"
            f" last token +{f['last_token_added_ms']:.2f} ms;"
            f" gap p99 {d['gap_ms_p99']:.2f} -> {p['gap_ms_p99']:.2f} ms"
        )


if __name__ == "__main__":
    main()
