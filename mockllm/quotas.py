"""A scenario's ``limits`` and ``context_window``: quotas as the real APIs meter them.

``limits: {rpm, tpm, per}`` are token buckets, refilled continuously (a bucket of 60 requests per
minute gains one a second). A request takes one request and its tokens (prompt tokens plus the
reply's, as usage counts them); when a bucket cannot pay, the request gets its API's own 429 with a
true ``Retry-After`` (whole seconds, rounded up) and ``retry-after-ms`` (which the openai and
anthropic SDKs read first), and takes nothing. Every response of the scenario, the 429 too, carries
the API's rate-limit headers with the live values:

- OpenAI (and every other format without its own): ``x-ratelimit-limit-requests``,
  ``x-ratelimit-remaining-requests``, ``x-ratelimit-reset-requests`` (the time until the bucket is
  full, in OpenAI's ``6m0s`` style), and the same three for ``-tokens``;
- Anthropic: ``anthropic-ratelimit-requests-limit``, ``-remaining``, ``-reset`` (an RFC 3339 time)
  and the same for ``-tokens``;
- Gemini: none (Google sends none); its 429 says the wait in the body's ``RetryInfo``.

``per: key`` keeps one set of buckets per API key (at most :data:`MAX_BUCKETS`, the least recently
used dropped first). Pure but for the clock's times passed in.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime

from .scenario import Limits, Scenario

#: Bucket sets kept for ``per: key`` (keys come from clients: the count must stay bounded).
MAX_BUCKETS = 10_000


@dataclass
class Bucket:
    capacity: float
    per_second: float
    level: float
    at: float

    @classmethod
    def per_minute(cls, amount: int, now: float) -> Bucket:
        return cls(float(amount), amount / 60.0, float(amount), now)

    def refill(self, now: float) -> None:
        self.level = min(self.capacity, self.level + (now - self.at) * self.per_second)
        self.at = now

    def wait_for(self, amount: float) -> float:
        """Seconds until the bucket holds ``amount`` (at most its capacity)."""
        return max(0.0, (min(amount, self.capacity) - self.level) / self.per_second)

    def full_in(self) -> float:
        return (self.capacity - self.level) / self.per_second


@dataclass(frozen=True)
class Quota:
    """What the buckets said about one request: allowed or how long to wait, and the headers."""

    allowed: bool
    retry_after: float
    headers: tuple[tuple[str, str], ...]


class Quotas:
    """Every scenario's buckets (and every key's, with ``per: key``) of one server."""

    def __init__(self) -> None:
        self._buckets: OrderedDict[tuple[str, str], tuple[Bucket | None, Bucket | None]] = OrderedDict()

    def take(self, scenario: Scenario, key: str, tokens: int, now: float, wall: float, style: str) -> Quota:
        """Charge one request of ``tokens`` tokens to ``scenario``'s buckets at clock time ``now``
        (``wall``: the same moment as a Unix time, for Anthropic's reset times)."""
        limits = scenario.limits
        assert limits is not None
        requests, token_bucket = self._get(scenario.name, limits, key if limits.per == "key" else "", now)
        waits = []
        for bucket, amount in ((requests, 1), (token_bucket, tokens)):
            if bucket is not None:
                bucket.refill(now)
                waits.append(bucket.wait_for(amount))
        wait = max(waits, default=0.0)
        if wait == 0.0:
            if requests is not None:
                requests.level -= 1
            if token_bucket is not None:
                token_bucket.level -= min(tokens, token_bucket.capacity)
        headers = _headers(style, requests, token_bucket, wall)
        if wait > 0.0:
            retry = (("Retry-After", str(math.ceil(wait))), ("retry-after-ms", str(math.ceil(wait * 1000))))
            headers = retry + headers
        return Quota(wait == 0.0, wait, headers)

    def _get(self, name: str, limits: Limits, key: str, now: float) -> tuple[Bucket | None, Bucket | None]:
        slot = (name, key)
        buckets = self._buckets.get(slot)
        if buckets is None:
            buckets = (
                Bucket.per_minute(limits.rpm, now) if limits.rpm else None,
                Bucket.per_minute(limits.tpm, now) if limits.tpm else None,
            )
            self._buckets[slot] = buckets
            if len(self._buckets) > MAX_BUCKETS:
                self._buckets.popitem(last=False)
        self._buckets.move_to_end(slot)
        return buckets


def _headers(
    style: str, requests: Bucket | None, tokens: Bucket | None, wall: float
) -> tuple[tuple[str, str], ...]:
    headers: list[tuple[str, str]] = []
    if style == "gemini":  # Google sends no rate-limit headers: RetryInfo in the 429's body
        return ()
    for kind, bucket in (("requests", requests), ("tokens", tokens)):
        if bucket is None:
            continue
        limit, remaining = str(int(bucket.capacity)), str(max(0, math.floor(bucket.level)))
        if style == "anthropic":
            reset = datetime.fromtimestamp(wall + bucket.full_in(), UTC).isoformat(timespec="seconds")
            headers += [
                (f"anthropic-ratelimit-{kind}-limit", limit),
                (f"anthropic-ratelimit-{kind}-remaining", remaining),
                (f"anthropic-ratelimit-{kind}-reset", reset.replace("+00:00", "Z")),
            ]
        else:
            headers += [
                (f"x-ratelimit-limit-{kind}", limit),
                (f"x-ratelimit-remaining-{kind}", remaining),
                (f"x-ratelimit-reset-{kind}", openai_duration(bucket.full_in())),
            ]
    return tuple(headers)


def openai_duration(seconds: float) -> str:
    """A reset time as OpenAI writes it: ``20ms``, ``1s``, ``17.5s``, ``6m0s``, ``1h2m3s``."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    whole = round(seconds, 3)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{secs:.3f}".rstrip("0").rstrip(".") + "s"
    if hours or minutes:
        text = f"{int(minutes)}m" + text
    if hours:
        text = f"{int(hours)}h" + text
    return text


def context_error(style: str, window: int, prompt_tokens: int) -> str:
    """The API's own words for a prompt past ``context_window``."""
    if style == "anthropic":
        return f"prompt is too long: {prompt_tokens} tokens > {window} maximum"
    if style == "gemini":
        return (
            f"The input token count ({prompt_tokens}) exceeds the maximum number of tokens "
            f"allowed ({window})."
        )
    return (
        f"This model's maximum context length is {window} tokens. However, your messages resulted "
        f"in {prompt_tokens} tokens. Please reduce the length of the messages."
    )
