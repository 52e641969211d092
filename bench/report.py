"""The tables ``python -m bench`` prints, from its report (``bench.json``'s content)."""

from __future__ import annotations

from typing import Any

from . import scale

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


def table(report: dict[str, Any]) -> str:
    plan = report["plan"]
    mock, ceil = report["cases"]["mockllm"], report["cases"]["ceiling"]
    rows = [("figure", "mockllm", "ceiling", "ratio")]

    def row(label: str, m: float | None, c: float | None, fmt: str = "{:,.1f}") -> None:
        signed = fmt.startswith("{:+")  # a drift near zero: a ratio of two such means nothing
        ratio = f"{m / c:.2f}×" if m is not None and c and not signed else ""
        rows.append(
            (label, fmt.format(m) if m is not None else "-", fmt.format(c) if c is not None else "-", ratio)
        )

    zm, zc = report["zero"]["mockllm"], report["zero"]["ceiling"]
    rows.append(
        (
            f"zero delay: tokens/s ({zm['client'].split(' ')[0]} client, median of {zm['rounds']} rounds)",
            f"{zm['tokens_per_s']:,.0f}",
            f"{zc['tokens_per_s']:,.0f}",
            f"{report['zero']['ratio_median']:.2f}×",
        )
    )
    row(
        "zero delay: server CPU µs per token",
        zm["server_cpu_us_per_token"],
        zc["server_cpu_us_per_token"],
        "{:.2f}",
    )
    row("zero delay: client CPU %", zm["client_cpu_pct"], zc["client_cpu_pct"], "{:.0f}")
    for streams in plan["streams"]:
        m, c = mock[f"paced_{streams}"], ceil[f"paced_{streams}"]
        label = f"N={streams} @{plan['delay'] * 1000:g}ms"
        for title, key, fmt in PACED_ROWS:
            row(f"{label}: {title}", m[key], c[key], fmt)
    if plan["capacity"]:
        row(
            CAPACITY,
            mock["capacity"]["streams"],
            ceil["capacity"]["streams"],
            "{:.0f}",
        )
    row("idle TTFB p50 ms", mock["idle"]["ttfb_ms_p50"], ceil["idle"]["ttfb_ms_p50"], "{:.3f}")
    cost = report["per_request"]
    row(
        "server CPU µs per request (sequential)",
        cost["mockllm"]["server_cpu_us_per_request"],
        cost["ceiling"]["server_cpu_us_per_request"],
        "{:.0f}",
    )
    row("  bare aiohttp handler (bench/floor.py)", cost["floor"]["server_cpu_us_per_request"], None, "{:.0f}")
    count = plan["selection"][0]
    for label, figures in report["selection"].items():
        row(
            f"choosing among {count:,} match scenarios ({label}): parse + pick µs CPU",
            figures["parse + pick cpu"],
            None,
        )
    for n, figures in report["proxy"].items():
        if n == "recorded":
            continue
        row(
            f"record proxy, N={n} @10ms: first token added ms",
            figures["first_token_added_ms"],
            None,
            "{:.2f}",
        )
        row(f"record proxy, N={n} @10ms: last token added ms", figures["last_token_added_ms"], None, "{:.2f}")
    row(
        f"held streams ({plan['held']}): KB each",
        mock["held"]["kb_per_stream"],
        ceil["held"]["kb_per_stream"],
    )
    row("serve launch → ready ms", mock["launch"]["ready_ms"], None)
    row("  (python -c 'import aiohttp.web' ms)", mock["launch"]["import_aiohttp_ms"], None)
    row("fixture: MockLLMServer start+stop ms", mock["fixture"]["start_stop_ms"], None, "{:.2f}")
    row("fixture: per-test reset ms", mock["fixture"]["reset_ms"], None, "{:.3f}")
    return "\n\n".join((aligned(rows), workers_table(report), wide_table(report)))


def workers_table(report: dict[str, Any]) -> str:
    """--workers 1 beside --workers 2 (server and client unpinned), per N tried."""
    workers = report["workers"]
    one, two = workers["workers_1"], workers["workers_2"]
    rows = [("--workers 1 vs 2 (unpinned)", "1 worker", "2 workers", "ratio")]
    ratio = two["streams"] / one["streams"] if one["streams"] else None
    rows.append(
        (
            CAPACITY,
            str(one["streams"]),
            str(two["streams"]),
            f"{ratio:.2f}×" if ratio else "",
        )
    )
    for n in sorted({*one["by_n"], *two["by_n"]}, key=int):
        a, b = one["by_n"].get(n), two["by_n"].get(n)
        for title, key, fmt in SCALE_ROWS:
            cells = [fmt.format(r[key]) if r and r.get(key) is not None else "-" for r in (a, b)]
            rows.append((f"N={n}: {title}", cells[0], cells[1], ""))
    return aligned(rows)


def wide_table(report: dict[str, Any]) -> str:
    streams, tokens, delay = report["plan"]["wide"]
    wide = report["wide"]
    rows = [
        (f"{streams:,} streams × {tokens} tokens @{delay * 1000:g}ms", "ceiling", "1 worker", "2 workers")
    ]
    for title, key, fmt in SCALE_ROWS:
        rows.append(
            (
                title,
                *(
                    fmt.format(wide[name][key]) if wide[name].get(key) is not None else "-"
                    for name in ("ceiling", "workers_1", "workers_2")
                ),
            )
        )
    return aligned(rows)


CAPACITY = (
    f"capacity (streams at once: pace within {scale.PACE_PCT:g} %, first byte ≤ {scale.START_MS / 1000:g} s)"
)

#: The rows of the scale tables: title, figure, format.
SCALE_ROWS = (
    ("complete streams", "complete", "{:.0f}"),
    ("gap p50 ms", "gap_ms_p50", "{:.2f}"),
    ("gap p99 ms", "gap_ms_p99", "{:.2f}"),
    ("pace drift p50 %", "pace_drift_pct_p50", "{:+.2f}"),
    ("pace drift max %", "pace_drift_pct_max", "{:+.2f}"),
    ("TTFB p50 ms", "ttfb_ms_p50", "{:,.0f}"),
    ("TTFB max ms", "ttfb_ms_max", "{:,.0f}"),
    ("wall s", "wall_s", "{:.1f}"),
    ("server CPU % (of one core)", "server_cpu_pct", "{:.0f}"),
    ("client CPU %", "client_cpu_pct", "{:.0f}"),
    ("RSS growth KB per stream", "server_rss_growth_kb_per_stream", "{:.1f}"),
)


def aligned(rows: list[tuple[str, ...]]) -> str:
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
