"""A decoded stream (:mod:`mockllm.decoders`) said in the scenario language: the reply's tokens
and tool calls as the upstream chunked them, ``timing.first_token`` and ``timing.gaps`` from when
each arrived, and what came between them as faults at their times (keep-alives as stalls with a
``keepalive``, one periodic stall when they are evenly spaced; malformed lines; an error event),
an event cut across reads as ``split`` or ``stall`` with ``mid_event``, and how the stream ended.

Every time is an offset from the response's headers, kept to :data:`DIGITS` places; deltas are
taken between rounded offsets, so a thousand gaps still add up to the recorded end.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

from . import decoders
from .decoders import Decoded, Error, Heard, Text, ToolStart
from .redaction import Redactor
from .scenario import split_tokens
from .wireblocks import KeepAlive, Raw
from .yamlwriter import Escaped, Flow, FlowList, escape

#: A body cut across reads more than this far apart was a stall (``mid_event``), else a split.
MID_EVENT_PAUSE = 0.05
#: Times are kept to a tenth of a millisecond (the replay's clock ticks in milliseconds).
DIGITS = 4


def seconds(value: float) -> float:
    return round(max(value, 0.0), DIGITS)


def tool_call(call: dict[str, Any], *, single: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"name": call["name"]}
    if call.get("id"):
        out["id"] = call["id"]
    fragments = call["fragments"]
    arguments = "".join(fragments)
    # One rune per fragment (mockllm's own pace) or one whole fragment read as the text: as text.
    if single or list(split_tokens(arguments)) == fragments:
        out["arguments"] = arguments
    else:
        out["arguments"] = FlowList(fragments)
    return out


def stream_scenario(
    decoded: Decoded, ending: dict[str, Any] | None, end: float, redactor: Redactor
) -> dict[str, Any]:
    """The scenario keys of ``decoded``: reply, tokens, tool_calls, finish_reason, done, timing
    and faults. ``ending``: the fault that says how the connection ended (None: cleanly, or the
    client left after the end); ``end``: when the last read arrived."""
    data: dict[str, Any] = {}
    items = _redacted(decoded.items, redactor)
    texts: list[tuple[Heard, Text]] = []
    calls: dict[int, dict[str, Any]] = {}
    slots: dict[int, list[Heard]] = {}
    finish: Heard | None = None
    done = False
    error = False
    for heard in items:
        item = heard.item
        if error:
            break
        if isinstance(item, Text) and item.tool is None:
            texts.append((heard, item))
        elif isinstance(item, Text) and item.tool is not None:
            call = calls.setdefault(item.tool, {"name": "", "id": None, "fragments": [], "heard": []})
            call["fragments"].append(item.text)
            call["heard"].append(heard)
        elif isinstance(item, ToolStart):
            call = calls.setdefault(item.tool, {"name": "", "id": None, "fragments": [], "heard": []})
            call["name"], call["id"] = redactor.text(item.name), item.id
        elif isinstance(item, KeepAlive | Raw | Error):
            count = len(texts) + sum(len(c["fragments"]) for c in calls.values())
            slots.setdefault(count, []).append(heard)
            error = isinstance(item, Error)
        elif isinstance(item, decoders.Finish):
            finish = heard
        elif isinstance(item, decoders.Done):
            done = True
    # The stream's tokens in the timeline's order: the reply's, then each call's fragments.
    tokens: list[tuple[str, Heard]] = [(t.text, h) for h, t in texts]
    for index in sorted(calls):
        tokens += list(zip(calls[index]["fragments"], calls[index]["heard"], strict=True))
    words = [text for text, _ in tokens[: len(texts)]]
    reply = "".join(words)
    if words == list(split_tokens(reply)):
        data["reply"] = reply
    elif words == list(split_tokens(reply, "word")):
        data["reply"], data["tokens"] = reply, "word"
    else:
        data["reply"] = FlowList(words)
    if calls:
        data["tool_calls"] = [tool_call(calls[i]) for i in sorted(calls)]
    if finish is not None:
        reason = finish.item.reason  # type: ignore[union-attr]
        if reason != ("tool_calls" if calls else "stop"):
            data["finish_reason"] = reason
    faults: list[dict[str, Any]] = []
    times: list[float] = []
    previous = 0.0
    for index, (_, heard) in enumerate(tokens):
        due, extra = _due(heard)
        delay, slot_faults = _slot(previous, due, slots.get(index, []))
        faults += [Flow({"at": index, **f}) for f in [*slot_faults, *extra]]
        times.append(delay)
        previous = heard.block.end if extra and "stall" in extra[0] else due
    end_items = slots.get(len(tokens), [])
    ended = finish.block.end if finish is not None else end
    delay, end_faults = _slot(previous, ended, end_items)
    faults += [Flow({"at": "end", **f}) for f in end_faults]
    if finish is None and not error:
        if ending is None:
            if decoded.rest:
                raw = Escaped(escape(redactor.data(decoded.rest)))
                faults.append(Flow({"at": "end", "malformed": {"raw": raw}}))
            ending = {"disconnect": "truncate"}
        elif ending == {"disconnect": "fin"} and decoded.rest:
            ending = {"disconnect": "mid-event"}
        faults.append(Flow({"at": "end", **ending}))
    elif finish is not None and not done and ending == {"stall": "forever"}:
        faults.append(Flow({"at": "end", "stall": "forever"}))
    elif finish is not None and not done:
        data["done"] = False
    timing: dict[str, Any] = {}
    if tokens:
        first, gaps = times[0], [*times[1:], delay]
        if not gaps[-1] and len(gaps) > 1:
            gaps.pop()  # no wait before the finish: say nothing of it
        if first:
            timing["first_token"] = first
        if any(gaps):
            timing["gaps"] = FlowList(gaps)
    elif delay:
        timing["first_token"] = delay
    if timing:
        data["timing"] = timing
    if faults:
        data["faults"] = faults
    return data


def _redacted(items: list[Heard], redactor: Redactor) -> list[Heard]:
    """The items with their texts redacted as the runs they make (the reply; each tool call's
    arguments): a token emptied by the redaction is dropped."""
    runs: dict[int | None, list[int]] = {}
    for position, heard in enumerate(items):
        if isinstance(heard.item, Text):
            runs.setdefault(heard.item.tool, []).append(position)
    out = list(items)
    for tool, positions in runs.items():
        texts = redactor.pieces([items[p].item.text for p in positions])  # type: ignore[union-attr]
        for position, text in zip(positions, texts, strict=True):
            out[position] = Heard(Text(text, tool), items[position].block)
    for position, heard in enumerate(out):
        if isinstance(heard.item, Error):
            item = heard.item
            out[position] = Heard(
                Error(redactor.text(item.message), item.type, item.code, item.event), heard.block
            )
        elif isinstance(heard.item, Raw):
            out[position] = Heard(Raw(redactor.data(heard.item.data)), heard.block)
    return [h for h in out if not (isinstance(h.item, Text) and not h.item.text)]


def _due(heard: Heard) -> tuple[float, list[dict[str, Any]]]:
    """When a token's event is due, and the fault that cuts it when it came across reads."""
    block = heard.block
    if block.whole:
        return block.end, []
    if block.end - block.start > MID_EVENT_PAUSE:
        return block.start, [{"stall": seconds(block.end - block.start), "mid_event": True}]
    return block.start, [{"split": {"byte": block.head, "gap": seconds(block.end - block.start)}}]


def _slot(previous: float, due: float, items: list[Heard]) -> tuple[float, list[dict[str, Any]]]:
    """The delay and the faults that bring a stream from ``previous`` to ``due`` through the
    keep-alives, malformed lines and error heard between them, each at its time."""
    faults: list[dict[str, Any]] = []
    now = round(previous, DIGITS)

    def wait_until(time: float) -> None:
        nonlocal now
        time = round(time, DIGITS)
        if time - now >= 0.0005:
            faults.append({"stall": seconds(time - now)})
            now = time

    position = 0
    while position < len(items):
        heard = items[position]
        item = heard.item
        if isinstance(item, KeepAlive):
            run = [heard]
            while position + len(run) < len(items) and items[position + len(run)].item == item:
                run.append(items[position + len(run)])
            until = items[position + len(run)].block.end if position + len(run) < len(items) else due
            times = [round(h.block.end, DIGITS) for h in run]
            start, every = _period(now, times, round(until, DIGITS))
            if every is not None:
                wait_until(start)
                keepalive = {"every": every, **({} if item.line is None else {"line": item.line})}
                faults.append({"stall": seconds(round(until, DIGITS) - now), "keepalive": keepalive})
                now = round(until, DIGITS)
            else:
                more, now = _keepalives(now, times, item)
                faults += more
            position += len(run)
            continue
        wait_until(heard.block.end)
        if isinstance(item, Raw):
            faults.append({"malformed": {"raw": Escaped(escape(item.data))}})
        elif isinstance(item, Error):
            error: dict[str, Any] = {"message": item.message}
            if item.type is not None:
                error["type"] = item.type
            if item.code is not None:
                error["code"] = item.code
            if item.event is not None:
                error["event"] = item.event
            faults.append({"error_event": error})
            break
        position += 1
    else:
        wait_until(due)
    # The wait before the first fault is the slot's own delay (first_token or its gap).
    if faults and list(faults[0]) == ["stall"]:
        return faults[0]["stall"], faults[1:]
    return 0.0, faults


def _period(now: float, times: list[float], until: float) -> tuple[float, float | None]:
    """``(start, every)`` of one stall whose keep-alives beat at ``times`` and which lasts until
    ``until``: evenly spaced (within a millisecond), the first one interval after the start,
    the stream resuming within one more. ``every`` None: no such stall."""
    count = len(times)
    intervals = [round(b - a, DIGITS) for a, b in itertools.pairwise(times)]
    every = sum(intervals) / len(intervals) if intervals else round(times[0] - now, DIGITS)
    start = round(times[0] - every, DIGITS)
    if every <= 0 or start < now - 0.001 or any(abs(i - every) > 0.001 for i in intervals):
        return now, None
    start = max(start, now)
    length = until - start
    if not times[-1] < until <= start + (count + 1) * every + 0.002:
        return now, None
    # A beat falls at every multiple of ``every`` strictly inside the stall: no more than these.
    every = max(every, length / (count + 1))
    return start, math.ceil(every * 10**DIGITS) / 10**DIGITS


def _keepalives(now: float, times: list[float], item: KeepAlive) -> tuple[list[dict[str, Any]], float]:
    """Keep-alives at ``times`` after ``now``, one stall each, and the time they bring the
    stream to; one at the same moment as the one before it (no stall holds it) as its bytes."""
    keepalive: dict[str, Any] = {} if item.line is None else {"line": item.line}
    out: list[dict[str, Any]] = []
    for interval in [round(b - a, DIGITS) for a, b in zip([now, *times], times, strict=False)]:
        if interval >= 0.0003:
            every = seconds(interval - 0.0001)
            out.append({"stall": seconds(interval), "keepalive": {"every": every, **keepalive}})
        else:
            out.append({"malformed": {"raw": Escaped(escape(_keepalive_bytes(item)))}})
    return out, max(now, times[-1])


def _keepalive_bytes(item: KeepAlive) -> bytes:
    if item.line is None:
        return b'event: ping\ndata: {"type": "ping"}\n\n'
    return item.line.encode() + b"\n\n" if item.line else b"\n"
