"""Latency models: a first token that waits longer for a longer prompt, and tokens_per_second."""

from __future__ import annotations

import itertools
import statistics
from typing import Any

import pytest

from mockllm import create_app
from mockllm.clock import ManualClock
from mockllm.loader import load_set, scenario_from_dict


def test_the_timing_keys_load_and_refuse_saying_the_same_thing_twice() -> None:
    scenario = scenario_from_dict(
        {
            "reply": "ab",
            "timing": {"first_token": {"base": "300ms", "per_prompt_token": "2ms"}, "tokens_per_second": 40},
        }
    )
    assert (scenario.timing.first_token, scenario.timing.per_prompt_token) == (0.3, 0.002)
    assert scenario.timing.per_token == pytest.approx(0.025)
    (problem,) = load_set(["reply: ab\ntiming: {per_token: 10ms, tokens_per_second: 40}\n"]).problems
    assert (
        str(problem) == "<string>:2:46: timing.tokens_per_second: says what per_token says: give one of them"
    )
    (problem,) = load_set(
        ["reply: ab\ntiming: {first_token: {base: 1s, per_prompt_token: 2 parsecs}}\n"]
    ).problems
    assert "timing.first_token.per_prompt_token: '2 parsecs' is not a duration" in str(problem)


async def test_the_first_token_waits_for_the_prompt(aiohttp_client: Any) -> None:
    clock = ManualClock(start=1000.0)
    prefill = scenario_from_dict(
        {
            "name": "prefill",
            "reply": "ok",
            "timing": {"first_token": {"base": "100ms", "per_prompt_token": "10ms"}},
        }
    )
    client = await aiohttp_client(create_app([prefill], clock=clock))
    for chars, tokens in ((40, 10), (400, 100)):
        clock.sleeps.clear()
        before = clock.now()  # a manual clock moves only when a deadline is waited for
        body = {"model": "prefill", "messages": [{"role": "user", "content": "x" * chars}], "stream": True}
        response = await client.post("/v1/chat/completions", json=body)
        assert response.status == 200
        await response.read()
        assert clock.sleeps[0] - before == pytest.approx(0.1 + tokens * 0.01, abs=1e-3)


def gaps(timing: dict[str, Any], tokens: int = 4000) -> list[float]:
    from mockllm.events import Token
    from mockllm.timeline import build_timeline

    scenario = scenario_from_dict({"reply": ["x"] * tokens, "timing": timing})
    times = [step.deadline for step in build_timeline(scenario) if isinstance(step.event, Token)]
    return [later - earlier for earlier, later in itertools.pairwise(times)]


@pytest.mark.parametrize("distribution", ["normal", "lognormal"])
def test_drawn_gaps_have_the_scripted_mean_and_spread(distribution: str) -> None:
    drawn = gaps({"per_token": "50ms", "distribution": distribution, "stddev": "10ms", "seed": 3})
    assert statistics.fmean(drawn) == pytest.approx(0.050, rel=0.03)
    assert statistics.stdev(drawn) == pytest.approx(0.010, rel=0.08)
    assert drawn == gaps({"per_token": "50ms", "distribution": distribution, "stddev": "10ms", "seed": 3})
    assert drawn != gaps({"per_token": "50ms", "distribution": distribution, "stddev": "10ms", "seed": 4})


def test_lognormal_is_skewed_and_the_clamp_holds() -> None:
    drawn = gaps({"per_token": "40ms", "distribution": "lognormal", "stddev": "40ms"})
    assert statistics.median(drawn) < statistics.fmean(drawn)  # a long tail to the right
    clamped = gaps(
        {
            "per_token": "40ms",
            "distribution": "normal",
            "stddev": "40ms",
            "clamp": {"min": "10ms", "max": "60ms"},
        }
    )
    assert min(clamped) == pytest.approx(0.010)
    assert max(clamped) == pytest.approx(0.060)
    assert min(gaps({"per_token": "10ms", "distribution": "normal", "stddev": "30ms"})) >= 0  # never negative


@pytest.mark.parametrize(
    ("timing", "problem"),
    [
        (
            "{per_token: 10ms, distribution: normal}",
            "timing.distribution: only goes with 'stddev'",
        ),
        ("{per_token: 10ms, stddev: 1ms}", "timing.stddev: only goes with 'distribution'"),
        (
            "{distribution: normal, stddev: 1ms}",
            "timing.distribution: needs a per_token (or tokens_per_second)",
        ),
        (
            "{per_token: 10ms, jitter: 1ms, distribution: normal, stddev: 1ms}",
            "timing.jitter: cannot be combined",
        ),
        (
            "{per_token: 10ms, distribution: normal, stddev: 1ms, clamp: {min: 2s, max: 1s}}",
            "min is longer than max",
        ),
        (
            "{per_token: 10ms, distribution: normal, stddev: 1ms, clamp: {max: soon}}",
            "timing.clamp.max: 'soon'",
        ),
    ],
)
def test_distribution_problems_are_positioned(timing: str, problem: str) -> None:
    (found,) = load_set([f"reply: ab\ntiming: {timing}\n"]).problems
    assert str(found).startswith("<string>:2:")
    assert problem in str(found)


def test_gaps_load_and_refuse_a_length_that_does_not_fit_the_stream() -> None:
    scenario = scenario_from_dict({"reply": "abc", "timing": {"gaps": ["31ms", 0.029], "per_token": "1s"}})
    assert scenario.timing.gaps == (0.031, 0.029)
    text = "reply: abc\ntiming:\n  gaps: [10ms, 20ms, 30ms, 40ms]\n"
    (problem,) = load_set([text]).problems
    assert str(problem) == (
        "<string>:3:9: timing.gaps: 4 gaps for a stream of 3 tokens: give 2 (one before each token"
        " after the first) or 3 (the last is the wait before the finish)"
    )
    (problem,) = load_set(["reply: ab\ntiming: {gaps: [10ms, 2 parsecs]}\n"]).problems
    assert str(problem).startswith("<string>:2:23: timing.gaps[1]: '2 parsecs' is not a duration")
    (problem,) = load_set(["reply: ''\ntiming: {gaps: [1s]}\n"]).problems
    assert str(problem).endswith("timing.gaps: the stream has no tokens for these gaps to come between")
    (problem,) = load_set(["reply: 'hi ${model}'\ntemplate: true\ntiming: {gaps: [1s, 1s]}\n"]).problems
    assert "cannot time a template's reply" in str(problem)


async def test_gaps_pace_each_token_on_the_manual_clock(aiohttp_client: Any) -> None:
    clock = ManualClock(start=1000.0)
    paced = scenario_from_dict(
        {
            "name": "paced",
            "reply": ["Hel", "lo", "!"],
            "tool_calls": [{"name": "f", "arguments": "{}"}],
            "timing": {"first_token": "100ms", "gaps": ["31ms", "29ms", "250ms", "5ms", "40ms"]},
        }
    )
    client = await aiohttp_client(create_app([paced], clock=clock))
    body = {"model": "paced", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    start = clock.now()
    response = await client.post("/v1/chat/completions", json=body)
    text = await response.text()
    assert '"content":"lo"' in text
    assert '"arguments":"}"' in text
    assert "[DONE]" in text
    # The first token, then each gap (the last one before the finish), each from the start.
    offsets = [round(t - start, 6) for t in clock.sleeps]
    assert offsets == [0.1, 0.131, 0.16, 0.41, 0.415, 0.455]
