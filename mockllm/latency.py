"""Latency models: a scenario's ``timing`` spec → :class:`~mockllm.scenario.Timing` (the
timeline draws the gaps: :func:`mockllm.timeline.gap_sampler`). Pure: no clock, no I/O.

``per_token`` is the mean gap. With ``distribution: normal`` or ``lognormal`` and ``stddev`` each
gap is drawn from that distribution (lognormal with that mean and standard deviation: real
streams' gaps are skewed, a few long ones among many short), then clamped to ``clamp: {min, max}``
(``min`` defaults to 0). Every draw comes from ``random.Random(seed)``, so every stream of a
scenario has the same gaps.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from .duration import parse_duration
from .scenario import Timing

#: What a problem is reported with: (key path, message).
Report = Callable[..., None]


def build_timing(timing: Mapping[str, Any], report: Report) -> Timing | None:
    """The :class:`Timing` of a scenario's ``timing`` mapping (durations already checked), or
    None after reporting what cannot be built."""
    first = timing.get("first_token", 0)
    if "tokens_per_second" in timing and "per_token" in timing:
        report(("timing", "tokens_per_second"), "says what per_token says: give one of them")
        return None
    per_token = (
        1 / timing["tokens_per_second"]
        if "tokens_per_second" in timing
        else parse_duration(timing.get("per_token", 0))
    )
    distribution = timing.get("distribution")
    stddev = parse_duration(timing.get("stddev", 0))
    clamp = timing.get("clamp", {})
    low = parse_duration(clamp.get("min", 0))
    high = parse_duration(clamp["max"]) if "max" in clamp else math.inf
    ok = True
    if distribution is not None and "jitter" in timing:
        report(
            ("timing", "jitter"),
            f"cannot be combined with distribution: {distribution} (its stddev is the spread)",
        )
        ok = False
    if distribution is not None and per_token <= 0:
        report(("timing", "distribution"), "needs a per_token (or tokens_per_second) as the mean gap")
        ok = False
    if low > high:
        report(("timing", "clamp"), "min is longer than max")
        ok = False
    if not ok:
        return None
    return Timing(
        first_token=parse_duration(first.get("base", 0) if isinstance(first, Mapping) else first),
        per_token=per_token,
        per_prompt_token=parse_duration(first.get("per_prompt_token", 0))
        if isinstance(first, Mapping)
        else 0.0,
        jitter=parse_duration(timing.get("jitter", 0)),
        seed=timing.get("seed", 0),
        distribution=distribution,
        stddev=stddev,
        clamp=(low, high),
    )


def gaps_ok(gaps: tuple[float, ...], tokens: int, template: bool, report: Callable[..., None]) -> bool:
    """``timing.gaps`` has one gap before each token after the first, and maybe one before the finish."""
    if not gaps:
        return True
    if template:
        report(("timing", "gaps"), "cannot time a template's reply: its tokens are known only per request")
        return False
    if tokens - 1 <= len(gaps) <= tokens:
        return True
    if tokens == 0:
        report(("timing", "gaps"), "the stream has no tokens for these gaps to come between")
        return False
    message = (
        f"{len(gaps):,} gaps for a stream of {tokens:,} tokens: give {tokens - 1:,} (one before each token"
        f" after the first) or {tokens:,} (the last is the wait before the finish)"
    )
    report(("timing", "gaps"), message)
    return False
