"""Scenario → the sequence of events on one stream, each with its deadline.

Deadlines are absolute offsets from the start of the stream, computed here once, so the write loop
never accumulates the overshoot of its sleeps: 1,000 tokens at 10 ms end at 10 s.

Faults plug in through :class:`Cursor`: each fault fires just before the event it is attached to,
may emit steps of its own, move the clock (a stall), and change how that next event is sent (skip
it, cut it in two) or end the stream. See :mod:`mockllm.faults`.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .events import (
    Chunk,
    Close,
    Cut,
    Done,
    Event,
    Finish,
    Fragment,
    Preamble,
    Step,
    Token,
    ToolCallEnd,
    ToolCallStart,
)

if TYPE_CHECKING:
    from .faults import Fault
    from .scenario import Scenario, Timing

#: The gap between the two writes of a ``split`` token: long enough that the two halves arrive
#: in separate reads on loopback, short enough not to disturb the scenario's pace.
SPLIT_GAP = 0.02


@dataclass(slots=True)
class Cursor:
    """The state a fault sees and changes as it fires."""

    time: float  # when the next event is due
    next: Event  # the event the fault fires before (a Token, or the Finish for ``at: end``)
    ended: bool = False  # the fault ended the stream
    skip: bool = False  # do not send ``next`` (``replace: true``)
    cut: Cut | None = None  # send ``next`` in two parts ("half": its head was already written)
    split_gap: float = SPLIT_GAP  # the time between the two parts of a split
    streaming: bool = True  # False for a non-streaming response: no keep-alives, no byte games
    #: (category, severity): a content filter stops the reply here; the finish says so
    filtered: tuple[str, str] | None = None

    def stopped(self) -> bool:
        """A content filter stopped the reply: the finish comes next."""
        return self.filtered is not None


#: Timelines longer than this (or endless ones) are not cached: each stream produces its own steps
#: as it plays them, so a stream costs memory for the step it is at, never for the reply's length.
CACHE_STEPS = 100_000
#: A cache entry: the scenario (so its ``id`` stays unique) and its steps, or None for a timeline
#: found to be longer than :data:`CACHE_STEPS`.
_cache: dict[tuple[int, float], tuple[Scenario, tuple[Step, ...] | None]] = {}


def stream_timeline(scenario: Scenario, *, time_scale: float = 1.0) -> Iterable[Step]:
    """:func:`build_timeline` of a stream, built once per scenario and time scale.

    Every stream of a scenario has the same steps (the jitter is seeded), and the steps are
    immutable, so a thousand streams of one scenario share one tuple instead of each building its
    own: this halves the per-token CPU of a paced stream. A timeline of more than
    :data:`CACHE_STEPS` steps (a reply that long, or an endless ``stall: forever`` with
    keep-alives) is produced lazily by each stream instead: building it ahead would cost every
    stream memory and CPU in proportion to its length, before its first byte and on the loop. A
    timeline's length is known without building it (:meth:`Fault.max_steps`).
    """
    key = (id(scenario), time_scale)
    hit = _cache.get(key)
    if hit is not None and hit[0] is scenario:
        return hit[1] if hit[1] is not None else build_timeline(scenario, time_scale=time_scale)
    if len(_cache) >= 256:  # scenario sets replaced at runtime leave old entries behind
        _cache.clear()
    # Preamble, finish, [DONE], close; a step per token; a start and an end per tool call.
    bound: float = 4 + scenario.stream_token_count + 2 * len(scenario.tool_calls) + len(scenario.transcript)
    bound += sum(fault.max_steps() for fault in scenario.faults)
    if bound > CACHE_STEPS:
        _cache[key] = (scenario, None)
        return build_timeline(scenario, time_scale=time_scale)
    steps = tuple(build_timeline(scenario, time_scale=time_scale))
    _cache[key] = (scenario, steps)
    return steps


def build_timeline(scenario: Scenario, *, time_scale: float = 1.0, streaming: bool = True) -> Iterator[Step]:
    """Yield the steps of one stream of ``scenario``.

    The jitter comes from ``random.Random(scenario.timing.seed)``, so every stream of a scenario has
    the same timing. The iterator may be infinite (``stall: forever`` with a keep-alive).
    ``time_scale`` multiplies every delay (0 collapses them all). With ``streaming=False`` (a
    non-streaming response) the timeline is always finite: stalls add time but no keep-alives.
    """
    timing = scenario.timing
    rng = random.Random(timing.seed)

    def delay(base: float) -> float:
        if timing.jitter:
            base += rng.uniform(-timing.jitter, timing.jitter)
        return max(base, 0.0) * time_scale

    gap = gap_sampler(timing, rng)

    # A token's index, None for ``at: end``, or the phase after the reply (``finish``, ``done``).
    by_index: defaultdict[int | str | None, list[Fault]] = defaultdict(list)
    for fault in scenario.faults:
        by_index[fault.at if fault.phase == "reply" else fault.phase].append(fault)

    yield Step(0.0, Preamble())
    if scenario.transcript:
        yield from _transcript(scenario, by_index, delay, time_scale, streaming)
        return
    sent = 0
    cursor = Cursor(time=delay(timing.first_token), next=Done(), streaming=streaming)
    index = 0
    # Walked group by group, never copied: a long reply costs a stream the step it is at.
    for tool, group in scenario.token_groups():
        if cursor.stopped():
            break
        last = len(group) - 1
        for position, text in enumerate(group):
            if index:
                recorded = index <= len(timing.gaps)  # ``gaps``: recorded, each its own
                cursor.time += delay(timing.gaps[index - 1]) if recorded else gap() * time_scale
            cursor.next = Token(index, text, first=sent == 0, tool=tool)
            faults = by_index.get(index)
            if faults:
                yield from _fire(faults, cursor, time_scale)
                if cursor.ended:
                    return
                if cursor.stopped():
                    break
            else:
                cursor.skip, cursor.cut = False, None
            if tool is not None and position == 0:
                call = scenario.tool_calls[tool]
                yield Step(cursor.time, ToolCallStart(tool, call.id, call.name, first=sent == 0))
                if sent == 0:  # the first event opens the reply, not the fragment after it
                    cursor.next = Token(index, text, tool=tool)
            if not cursor.skip:
                sent += 1
            yield from _send(cursor)
            if tool is not None and position == last:
                call = scenario.tool_calls[tool]
                yield Step(cursor.time, ToolCallEnd(tool, call.id, call.name, call.arguments))
            index += 1

    if index and len(timing.gaps) >= index and not cursor.stopped():  # a recorded wait before the finish
        cursor.time += delay(timing.gaps[index - 1])
    # the count the finish reports: the scenario's ``usage`` if it says, else the tokens sent
    scripted = scenario.usage.completion_tokens if scenario.usage is not None else None
    counted = sent if scripted is None else scripted
    if not cursor.stopped():
        cursor.next = Finish(scenario.finish_reason, counted, first=sent == 0)
        yield from _fire(by_index.get(None, []), cursor, time_scale)
        if cursor.ended:
            return
    if cursor.filtered is not None:  # set by a fault in the loop or at the end
        cursor.next = Finish("content_filter", counted, first=sent == 0, filtered=cursor.filtered)
        cursor.skip, cursor.cut = False, None
    yield from _send(cursor)
    end = Close("eof", "completed")
    # After the finish: the end sentinel, then the end; faults ``at: after-finish`` fire before
    # the sentinel (and may cut it), ``at: after-done`` after it.
    for phase, event in (("finish", Done() if scenario.done else None), ("done", None)):
        cursor.next = event or end
        yield from _fire(by_index.get(phase, []), cursor, time_scale)
        if cursor.ended:
            return
        if event is not None:
            yield from _send(cursor)
    yield Step(cursor.time, end)


def gap_sampler(timing: Timing, rng: random.Random) -> Callable[[], float]:
    """A function giving the next per-token gap in seconds (before the time scale)."""
    mean, spread = timing.per_token, timing.stddev
    low, high = timing.clamp
    if timing.distribution is None:
        if not timing.jitter:
            return lambda: mean
        jitter = timing.jitter
        return lambda: max(mean + rng.uniform(-jitter, jitter), 0.0)
    if timing.distribution == "normal":

        def draw() -> float:
            return rng.gauss(mean, spread)

    else:  # lognormal with this mean and standard deviation
        sigma = math.sqrt(math.log1p((spread / mean) ** 2))
        mu = math.log(mean) - sigma * sigma / 2

        def draw() -> float:
            return rng.lognormvariate(mu, sigma)

    return lambda: min(max(draw(), low, 0.0), high)


def _transcript(
    scenario: Scenario,
    by_index: Mapping[int | str | None, list[Fault]],
    delay: Callable[[float], float],
    time_scale: float,
    streaming: bool,
) -> Iterator[Step]:
    """The reads of a ``transcript`` at their times, faults firing before a read by its index."""
    cursor = Cursor(time=0.0, next=Done(), streaming=streaming)
    for index, (after, data) in enumerate(scenario.transcript):
        cursor.time += delay(after)
        cursor.next = Chunk(index, data)
        yield from _fire(by_index.get(index, []), cursor, time_scale)
        if cursor.ended:
            return
        yield from _send(cursor)
    cursor.next = Chunk(len(scenario.transcript), b"")  # what ``at: end`` fires before: nothing
    for key in (None, "finish", "done"):  # a transcript has no finish: after-* fire at its end
        yield from _fire(by_index.get(key, []), cursor, time_scale)
        if cursor.ended:
            return
    yield Step(cursor.time, Close("eof", "completed"))


def _fire(faults: list[Fault], cursor: Cursor, time_scale: float) -> Iterator[Step]:
    cursor.skip = False
    cursor.cut = None
    cursor.split_gap = SPLIT_GAP
    for fault in faults:
        yield from fault.fire(cursor, time_scale)
        if cursor.ended:
            return


def _send(cursor: Cursor) -> Iterator[Step]:
    """Send the cursor's next event as the faults left it: whole, skipped or in two parts."""
    event, time = cursor.next, cursor.time
    if cursor.skip:
        return
    if cursor.cut == "half":  # a stall with ``mid_event`` already wrote the head
        yield Step(time, Fragment(event, "tail", "half"))
    elif cursor.cut == "open":  # ``unterminated``: all but its closing line ending, ever
        yield Step(time, Fragment(event, "head", "open"))
    elif cursor.cut is not None:  # a split: at a UTF-8 character or at a byte
        yield Step(time, Fragment(event, "head", cursor.cut))
        yield Step(time + cursor.split_gap, Fragment(event, "tail", cursor.cut))
    else:
        yield Step(time, event)
