"""``GET /metrics``, read by Prometheus' own parser (prometheus_client's): counters by route,
scenario and outcome, tokens, open requests and the lateness histogram."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from .conftest import Serve

pytestmark = pytest.mark.functional

CHAT = {"model": "ok", "messages": [{"role": "user", "content": "hi"}], "stream": True}


def scrape(url: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    response = httpx.get(f"{url}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def test_metrics_count_what_was_served(serve: Serve) -> None:
    server = serve({"name": "ok", "reply": "abcd"}, {"name": "down", "reply": "x", "status": 503})
    for _ in range(2):
        httpx.post(f"{server.openai_base_url}/chat/completions", json=CHAT)
    httpx.post(f"{server.openai_base_url}/chat/completions", json={**CHAT, "model": "down"})
    httpx.get(f"{server.url}/no/such/path")
    httpx.get(f"{server.url}/another/{'x' * 50}")
    httpx.get(f"{server.url}/healthz")  # not counted, as it is not logged
    samples = scrape(server.url)
    requests = samples["mockllm_requests_total"]
    chat = "/v1/chat/completions"
    assert requests[(("outcome", "completed"), ("route", chat), ("scenario", "ok"))] == 2
    assert requests[(("outcome", "fault:status"), ("route", chat), ("scenario", "down"))] == 1
    assert requests[(("outcome", "rejected"), ("route", "unmatched"), ("scenario", ""))] == 2  # one series
    assert samples["mockllm_tokens_sent_total"] == {(("scenario", "ok"),): 8}
    assert samples["mockllm_open_requests"] == {(): 0}
    assert samples["mockllm_stream_lateness_seconds_count"] == {(): 2}
    assert samples["mockllm_stream_lateness_seconds_bucket"][(("le", "+Inf"),)] == 2
    buckets = [
        v
        for k, v in sorted(
            samples["mockllm_stream_lateness_seconds_bucket"].items(), key=lambda kv: float(kv[0][0][1])
        )
    ]
    assert buckets == sorted(buckets)  # cumulative
    assert samples["mockllm_response_bytes_total"][()] > 0
    httpx.get(f"{server.url}/metrics")
    assert scrape(server.url)["mockllm_requests_total"] == requests  # scrapes are not requests


def test_an_open_stream_is_counted_while_it_plays(serve: Serve) -> None:
    server = serve({"name": "ok", "reply": "ab", "faults": [{"at": 1, "stall": "forever"}]})
    with httpx.stream("POST", f"{server.openai_base_url}/chat/completions", json=CHAT) as response:
        next(response.iter_raw())
        assert scrape(server.url)["mockllm_open_requests"] == {(): 1}
