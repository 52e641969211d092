"""The scenario model: what the fake model says, how fast, and how its stream misbehaves.

Scenarios are frozen and already validated; :mod:`mockllm.loader` is the only way to build one
from a file, a mapping or YAML text.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from .faults import Fault
from .match import Match
from .vectors import Embeddings

TokenMode = Literal["rune", "word"]

_WORD = re.compile(r"\s*\S+\s*|\s+")


def split_tokens(text: str, mode: TokenMode = "rune") -> tuple[str, ...]:
    """Split a reply into tokens.

    ``rune``: one Unicode code point per token (like iterating a Go ``[]rune``), so an emoji with a
    skin-tone modifier is two tokens. ``word``: a word with the whitespace that follows it; leading
    whitespace stays with the first word.
    """
    if mode == "rune":
        return tuple(text)
    return tuple(_WORD.findall(text))


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A tool (function) call the model makes; ``arguments`` is JSON text, streamed in fragments."""

    name: str
    arguments: str
    id: str | None = None  # None: each wire format makes one up in its own style
    #: The fragments as given (``arguments`` as a list, e.g. as recorded); empty: split ``arguments``.
    chunks: tuple[str, ...] = ()

    def fragments(self, mode: TokenMode = "rune") -> tuple[str, ...]:
        """The argument fragments: as given, else split like the reply (one rune each, by default)."""
        return self.chunks or split_tokens(self.arguments, mode)


@dataclass(frozen=True, slots=True)
class Timing:
    """Delays in seconds. ``jitter`` is a uniform ± on every delay, drawn from ``seed``."""

    first_token: float = 0.0
    per_token: float = 0.0
    jitter: float = 0.0
    seed: int = 0
    #: Added to ``first_token`` per prompt token (``first_token: {base, per_prompt_token}``).
    per_prompt_token: float = 0.0
    #: ``normal`` or ``lognormal``: per-token gaps drawn with mean ``per_token`` and ``stddev``,
    #: clamped to ``clamp`` (:mod:`mockllm.latency`); None: every gap is ``per_token`` (± jitter).
    distribution: Literal["normal", "lognormal"] | None = None
    stddev: float = 0.0
    clamp: tuple[float, float] = (0.0, math.inf)
    #: ``gaps``: the delay before each token after the first (instead of ``per_token``), and
    #: optionally one more before the finish. Its length fits the stream (checked at load).
    gaps: tuple[float, ...] = ()

    def gap(self, index: int) -> float:
        """The delay before token ``index`` (> 0): ``gaps`` where it has one, else ``per_token``."""
        return self.gaps[index - 1] if index <= len(self.gaps) else self.per_token


@dataclass(frozen=True, slots=True)
class Wire:
    """Byte-level options for the whole stream (see the README's "Wire options")."""

    line_ending: Literal["lf", "crlf", "cr"] = "lf"
    bom: bool = False
    event_ids: bool = False
    retry: int | None = None
    comment_first: str | None = None
    no_space: bool = False
    framing: Literal["chunked", "close-delimited", "content-length"] = "chunked"
    #: None: the wire format's own (text/event-stream, application/x-ndjson); "": no Content-Type.
    content_type: str | None = None
    flush: Literal["due", "event"] = "due"
    #: ``full``: each format's chunks as the real API sends them; ``compact``: OpenAI chat's shorter shape.
    chunks: Literal["full", "compact"] = "full"
    #: JSON data pretty-printed over several ``data:`` lines (SSE joins them with ``\n``).
    multiline_data: bool = False


@dataclass(frozen=True)
class ChaosOption:
    """One thing chaos can draw: an HTTP answer (``step``) or a fault (``fault``, its ``at``
    drawn per request when ``random_at``)."""

    weight: float
    step: Scenario | None = None
    fault: Fault | None = None
    random_at: bool = False


@dataclass(frozen=True)
class Chaos:
    """``chaos``: the n-th request draws from ``Random(f"{seed}:{n}")``."""

    seed: int
    rate: float
    options: tuple[ChaosOption, ...]


@dataclass(frozen=True)
class Limits:
    """``limits``: requests and tokens per minute, in one bucket or one per API key."""

    rpm: int | None = None
    tpm: int | None = None
    per: Literal["global", "key"] = "global"


@dataclass(frozen=True)
class Usage:
    """``usage``: the token counts a reply reports, in place of mockllm's own (a recording keeps
    the upstream's). Only what is reported changes: ``context_window``, ``limits`` and
    ``per_prompt_token`` still measure the request by mockllm's count."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None


@dataclass(frozen=True)
class Scenario:
    """A validated scenario. Build one with :func:`mockllm.load_scenarios` or :func:`mockllm.scenario`."""

    name: str
    tokens: tuple[str, ...]
    description: str = ""
    #: ``default: true``: this scenario answers a request that selects none.
    default: bool = False
    #: ``match``: the conditions on a request under which this scenario answers it.
    match: Match | None = None
    #: ``template: true``: the reply is rendered per request (:mod:`mockllm.template`).
    template: bool = False
    tool_calls: tuple[ToolCall, ...] = ()
    token_mode: TokenMode = "rune"
    model: str | None = None
    finish_reason: str = "stop"
    done: bool = True
    timing: Timing = Timing()
    faults: tuple[Fault, ...] = ()
    status: int | None = None
    headers: tuple[tuple[str, str], ...] = ()
    body: Any = None
    first_byte: float = 0.0
    limits: Limits | None = None
    chaos: Chaos | None = None
    #: The largest prompt (in prompt tokens) a request may send.
    context_window: int | None = None
    #: ``usage``: the counts the reply reports (None: mockllm counts them).
    usage: Usage | None = None
    #: ``embeddings``: the vectors' size and vectors pinned for given inputs.
    embeddings: Embeddings | None = None
    wire: Wire = Wire()
    #: ``transcript``: the body as reads, ``(seconds after the previous read, bytes)``, sent as is
    #: instead of a reply in the route's format.
    transcript: tuple[tuple[float, bytes], ...] = ()
    #: One scenario per step of ``sequence``, each already merged over this one.
    sequence: tuple[Scenario, ...] = field(default=(), repr=False)
    #: Where the scenario came from, for messages: ``path:line``, or ``<inline>``.
    source: str = "<inline>"

    @property
    def reply_text(self) -> str:
        """The whole reply, as a client that reads every token ends up with it."""
        return "".join(self.tokens)

    @property
    def stream_tokens(self) -> tuple[tuple[int | None, str], ...]:
        """Every token of a stream in order, as ``(tool call index or None, text)``: the reply's
        tokens, then each tool call's argument fragments. A fault's ``at`` indexes this."""
        return tuple((tool, text) for tool, group in self.token_groups() for text in group)

    def token_groups(self) -> Iterator[tuple[int | None, tuple[str, ...]]]:
        """:attr:`stream_tokens` as runs that share a tool call index, without copying them
        (the reply's tokens are the scenario's own tuple): what a stream walks."""
        if self.tokens:
            yield None, self.tokens
        for index, call in enumerate(self.tool_calls):
            fragments = call.fragments(self.token_mode)
            if fragments:
                yield index, fragments

    @property
    def stream_token_count(self) -> int:
        return sum(len(group) for _, group in self.token_groups())

    def step(self, n: int) -> Scenario:
        """The scenario that answers this scenario's ``n``-th request (0-based).

        Without a ``sequence`` that is the scenario itself; with one, step ``n``, the last step
        repeating once the sequence is used up.
        """
        if not self.sequence:
            return self
        return self.sequence[min(n, len(self.sequence) - 1)]


def default_first(scenarios: Sequence[Scenario]) -> tuple[Scenario, ...]:
    """The scenarios with the default first: the one marked ``default: true``, else the first."""
    marked = next((s for s in scenarios if s.default), None)
    if marked is None:
        return tuple(scenarios)
    return (marked, *(s for s in scenarios if s is not marked))
