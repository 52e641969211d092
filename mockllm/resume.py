"""EventSource resume: where a stream continues after a reconnect with ``Last-Event-ID: N``.

An id names an event of the stream as the first connection sent it: the scenario's timeline with
all its faults, where a malformed line or an error event takes an id like any other event. The
stream resumes with the reply's next event after the one named (after a fault's event: the reply
event that fault came before), with ids continuing from N, the first event at once and the later
ones keeping their spacing. The faults between the named event and that point (the disconnect,
error event or malformed line that made the client reconnect) are behind the client and are not
repeated; the later ones still fire.

The reply's own events (tokens, tool-call starts and ends, the finish, ``[DONE]``) are placed by a
key that orders them the same with or without faults, so the point is found in the timeline that
drops those faults. Pure: no I/O.
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Iterator
from dataclasses import replace

from .events import Done, Event, Finish, Fragment, Preamble, Step, Token, ToolCallEnd, ToolCallStart
from .formats import StreamEncoder
from .scenario import Scenario
from .timeline import build_timeline

#: Where a reply event stands: (token index, 0 before the token / 1 the token / 2 after it);
#: the finish and ``[DONE]`` come after every token.
Key = tuple[float, int]
_NONE: Key = (-1, 0)


def resumed(
    scenario: Scenario, encoder: StreamEncoder, last_id: int, *, time_scale: float = 1.0
) -> list[Step] | Iterator[Step] | None:
    """The steps of a stream that resumes after event ``last_id`` (``encoder`` takes in what comes
    before, so its state and ids continue); None when no reply event follows that one."""
    spans = _spans(scenario)
    named = _named(scenario, encoder, last_id, spans)
    if named is None:
        return None
    after = next((key for key in _reply_keys(scenario, spans) if key > named), None)
    if after is None:
        return None
    scenario = replace(
        scenario, faults=tuple(f for f in scenario.faults if not _behind(f.at, after, scenario))
    )
    steps = build_timeline(scenario, time_scale=time_scale)
    head: list[Step] = []
    for step in steps:
        key = _key(step.event, spans)
        if key is not None and key >= after:
            encoder.continue_after(last_id)
            start = step.deadline
            rest = (replace(later, deadline=max(0.0, later.deadline - start)) for later in steps)
            return itertools.chain(head, [replace(step, deadline=0.0)], rest)
        if isinstance(step.event, Preamble):
            head.append(step)  # the preamble (BOM, retry:) opens every response
        else:
            encoder.encode(step.event)
    return None  # pragma: no cover - the key was found in the reply, so its event is in the timeline


def _spans(scenario: Scenario) -> dict[int, tuple[int, int]]:
    """Each tool call's first and last token index."""
    spans, index = {}, 0
    for tool, group in scenario.token_groups():
        if tool is not None:
            spans[tool] = (index, index + len(group) - 1)
        index += len(group)
    return spans


def _key(event: Event, spans: dict[int, tuple[int, int]]) -> Key | None:
    """The key of a reply event (a split event counts where its first part goes); None for the rest."""
    if isinstance(event, Fragment):
        return _key(event.event, spans) if event.part == "head" else None
    if isinstance(event, Token):
        return (event.index, 1)
    if isinstance(event, ToolCallStart):
        return (spans[event.tool][0], 0)
    if isinstance(event, ToolCallEnd):
        return (spans[event.tool][1], 2)
    if isinstance(event, Finish):
        return (math.inf, 0)
    if isinstance(event, Done):
        return (math.inf, 1)
    return None


def _named(
    scenario: Scenario, encoder: StreamEncoder, last_id: int, spans: dict[int, tuple[int, int]]
) -> Key | None:
    """The key of the last reply event at or before the event the first stream sent as
    ``last_id`` (``_NONE`` if none came before); None if that stream never sent such an id. The
    timeline is walked without keep-alives (comments, which take no id), so it is finite."""
    counter = copy.deepcopy(encoder)
    seen = _NONE
    for step in build_timeline(scenario, streaming=False):
        before = seen
        counter.encode(step.event)
        key = _key(step.event, spans)
        if key is not None:
            seen = key
        if counter.last_id >= last_id:
            # An id inside a step's events (OpenAI's role chunk before the first token's, cut in
            # the middle by a mid-event disconnect) names none of the reply: that step comes again.
            return seen if counter.last_id == last_id else before
    return None


def _reply_keys(scenario: Scenario, spans: dict[int, tuple[int, int]]) -> Iterator[Key]:
    """The keys of the reply's events in order, as a stream without faults sends them."""
    starts = {first: tool for tool, (first, _) in spans.items()}
    ends = {last for _, last in spans.values()}
    for index in range(scenario.stream_token_count):
        if index in starts:
            yield (index, 0)
        yield (index, 1)
        if index in ends:
            yield (index, 2)
    yield (math.inf, 0)
    if scenario.done:
        yield (math.inf, 1)


def _behind(at: int | None, after: Key, scenario: Scenario) -> bool:
    """A fault fired before the reply event at ``after`` (a fault ``at: k`` fires just before
    token k, and before its tool call's start); ``at: end`` fires just before the finish."""
    index, part = after
    if part == 2:  # after a token: the faults of the next one come before the next event
        index += 1
    if index >= scenario.stream_token_count:
        return True
    return at is not None and at <= index
