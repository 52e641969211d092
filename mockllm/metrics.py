"""``GET /metrics``: what the server did, in Prometheus' text exposition format (version 0.0.4).

Counted as calls finish, not read back from the call log (which drops its oldest calls past
``--max-calls``, and a counter must never go down). Written by hand rather than with
``prometheus_client``: five metric families need no dependency in a tool that runs in every CI job,
and the text format is small and stable
(https://prometheus.io/docs/instrumenting/exposition_formats/).

Labels stay bounded: ``route`` is the route's pattern (``unmatched`` for a path nothing serves,
so a client's made-up paths cannot grow the series), ``scenario`` a loaded scenario's name.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from .calls import Call

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: Buckets of the lateness histogram (seconds): how late a stream's worst write went out.
LATENESS_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0)


class Metrics:
    """Counters of one server, updated by the call-log middleware as requests start and end."""

    def __init__(self) -> None:
        self.requests: Counter[tuple[str, str, str]] = Counter()
        self.tokens: Counter[str] = Counter()
        self.bytes = 0
        self.open = 0
        self.lateness = [0] * len(LATENESS_BUCKETS)
        self.lateness_sum = 0.0
        self.streams = 0

    def started(self) -> None:
        self.open += 1

    def finished(self, call: Call, route: str) -> None:
        self.open -= 1
        scenario = call.scenario or ""
        self.requests[(route, scenario, call.outcome)] += 1
        self.bytes += call.bytes_sent
        if call.stream and call.first_byte is not None:
            self.tokens[scenario] += call.tokens_sent
            self.streams += 1
            self.lateness_sum += call.max_lateness
            for index, bound in enumerate(LATENESS_BUCKETS):
                if call.max_lateness <= bound:
                    self.lateness[index] += 1

    def render(self) -> str:
        lines = [
            *_family(
                "mockllm_requests_total", "counter", "Requests answered, by route, scenario and outcome."
            ),
            *(
                f"mockllm_requests_total{_labels(route=r, scenario=s, outcome=o)} {n}"
                for (r, s, o), n in sorted(self.requests.items())
            ),
            *_family("mockllm_tokens_sent_total", "counter", "Tokens streamed, by scenario."),
            *(f"mockllm_tokens_sent_total{_labels(scenario=s)} {n}" for s, n in sorted(self.tokens.items())),
            *_family("mockllm_response_bytes_total", "counter", "Body bytes written to clients."),
            f"mockllm_response_bytes_total {self.bytes}",
            *_family(
                "mockllm_open_requests", "gauge", "Requests being answered now (open streams included)."
            ),
            f"mockllm_open_requests {self.open}",
            *_family(
                "mockllm_stream_lateness_seconds",
                "histogram",
                "How late each stream's latest write went out against its schedule.",
            ),
            *(
                f'mockllm_stream_lateness_seconds_bucket{{le="{bound:g}"}} {count}'
                for bound, count in zip(LATENESS_BUCKETS, self.lateness, strict=True)
            ),
            f'mockllm_stream_lateness_seconds_bucket{{le="+Inf"}} {self.streams}',
            f"mockllm_stream_lateness_seconds_sum {self.lateness_sum:.6f}",
            f"mockllm_stream_lateness_seconds_count {self.streams}",
        ]
        return "\n".join(lines) + "\n"


def _family(name: str, kind: str, help: str) -> Iterable[str]:
    return (f"# HELP {name} {help}", f"# TYPE {name} {kind}")


def _labels(**labels: str) -> str:
    def escape(value: str) -> str:
        return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')

    return "{" + ",".join(f'{key}="{escape(value)}"' for key, value in labels.items()) + "}"
