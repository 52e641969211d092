"""``limits`` and ``context_window``: token buckets with live rate-limit headers, a true
Retry-After the SDKs wait for, and each API's own context-length error."""

from __future__ import annotations

import time

import anthropic
import httpx
import openai
import pytest

from mockllm.loader import scenario_from_dict
from mockllm.quotas import Quotas, openai_duration

from .conftest import Serve

CHAT = {"model": "metered", "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.02, "20ms"), (1, "1s"), (17.5, "17.5s"), (360, "6m0s"), (3723.25, "1h2m3.25s")],
)
def test_reset_times_read_as_openais(seconds: float, text: str) -> None:
    assert openai_duration(seconds) == text


def test_buckets_refill_continuously_and_a_refused_request_takes_nothing() -> None:
    scenario = scenario_from_dict({"name": "s", "reply": "abc", "limits": {"rpm": 2, "tpm": 100}})
    quotas = Quotas()
    first = quotas.take(scenario, "", 10, now=0.0, wall=0.0, style="openai")
    assert first.allowed
    assert dict(first.headers) == {
        "x-ratelimit-limit-requests": "2",
        "x-ratelimit-remaining-requests": "1",
        "x-ratelimit-reset-requests": "30s",
        "x-ratelimit-limit-tokens": "100",
        "x-ratelimit-remaining-tokens": "90",
        "x-ratelimit-reset-tokens": "6s",
    }
    assert quotas.take(scenario, "", 10, now=0.0, wall=0.0, style="openai").allowed
    refused = quotas.take(scenario, "", 10, now=15.0, wall=15.0, style="openai")  # half a request back
    assert not refused.allowed
    assert refused.retry_after == pytest.approx(15.0)
    assert dict(refused.headers)["Retry-After"] == "15"
    assert dict(refused.headers)["retry-after-ms"] == "15000"
    assert quotas.take(scenario, "", 10, now=30.0, wall=30.0, style="openai").allowed


def test_per_key_buckets_are_separate_and_anthropic_resets_are_times() -> None:
    scenario = scenario_from_dict({"name": "s", "reply": "abc", "limits": {"rpm": 1, "per": "key"}})
    quotas = Quotas()
    assert quotas.take(scenario, "key-a", 1, now=0.0, wall=1_800_000_000.0, style="anthropic").allowed
    other = quotas.take(scenario, "key-b", 1, now=0.0, wall=1_800_000_000.0, style="anthropic")
    assert other.allowed
    assert dict(other.headers) == {
        "anthropic-ratelimit-requests-limit": "1",
        "anthropic-ratelimit-requests-remaining": "0",
        "anthropic-ratelimit-requests-reset": "2027-01-15T08:01:00Z",
    }
    assert not quotas.take(scenario, "key-a", 1, now=1.0, wall=1_800_000_001.0, style="anthropic").allowed


@pytest.mark.functional
def test_the_openai_sdk_waits_the_true_retry_after_and_sees_the_headers_fall(serve: Serve) -> None:
    server = serve({"name": "metered", "reply": "ok", "limits": {"rpm": 60}})
    url = f"{server.openai_base_url}/chat/completions"
    remaining = [int(httpx.post(url, json=CHAT).headers["x-ratelimit-remaining-requests"]) for _ in range(3)]
    assert remaining == [59, 58, 57]
    with httpx.Client() as fast:  # one a second comes back while these run: go on until refused
        refused = next(r for r in (fast.post(url, json=CHAT) for _ in range(200)) if r.status_code != 200)
    assert refused.status_code == 429
    assert refused.json()["error"]["type"] == "requests"  # OpenAI's own 429 body
    assert refused.headers["Retry-After"] == "1"
    client = openai.OpenAI(base_url=server.openai_base_url, api_key="x", max_retries=3)
    started = time.monotonic()
    reply = client.chat.completions.with_raw_response.create(
        model="metered", messages=[{"role": "user", "content": "hi"}]
    )
    waited = time.monotonic() - started
    assert reply.parse().choices[0].message.content == "ok"
    assert 0.3 < waited < 10  # it waited for the bucket (retry-after-ms), not its own backoff alone
    assert [c.status for c in server.calls][-2:] == [429, 200]


@pytest.mark.functional
def test_context_window_errors_are_the_sdks_own(serve: Serve) -> None:
    server = serve({"name": "metered", "reply": "ok", "context_window": 5})
    long = "x" * 100  # 25 prompt tokens
    client = openai.OpenAI(base_url=server.openai_base_url, api_key="x", max_retries=0)
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="metered", messages=[{"role": "user", "content": long}])
    assert caught.value.code == "context_length_exceeded"
    assert "maximum context length is 5 tokens. However, your messages resulted in 25 tokens" in str(
        caught.value
    )
    claude = anthropic.Anthropic(base_url=server.url, api_key="x", max_retries=0)
    with pytest.raises(anthropic.BadRequestError, match="prompt is too long: 25 tokens > 5 maximum"):
        claude.messages.create(model="metered", max_tokens=10, messages=[{"role": "user", "content": long}])
    short = client.chat.completions.create(model="metered", messages=[{"role": "user", "content": "hi"}])
    assert short.choices[0].message.content == "ok"
