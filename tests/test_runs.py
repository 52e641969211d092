"""A shared timeline's runs of text tokens (mockllm.runs) write what the step-by-step path writes.

The fast path slices pre-escaped texts out of a table and bisects the deadlines; any mistake in
an index or a bound shows as a byte, a write boundary or a count that differs from playing the
same steps one by one. Hypothesis draws the steps (first tokens, plain tokens, keep-alives, a
finish, gaps of zero and not) and how long each write keeps the loop busy (so runs come due in
part, as when a loop catches up)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mockllm.clock import ManualClock
from mockllm.events import Close, CloseMode, Done, Finish, KeepAlive, Preamble, Step, Token
from mockllm.formats import FORMATS, ApiRequest, StreamContext
from mockllm.runs import Runs, runs_of
from mockllm.streaming import play

from .conftest import make_scenario

CONTEXT = StreamContext(id="chatcmpl-1", created=1700000000, model="m")
#: Formats whose text tokens have a fixed frame (the fast path's case), each its own way:
#: OpenAI's first token opens the reply, Anthropic's opens a content block, Gemini's SSE chunks.
FORMAT_OPTIONS = {"openai-chat": {}, "anthropic": {}, "gemini": {"sse": True}}


class BusySink:
    """Takes every write, and lets the clock run on by the next of ``busy`` after each one."""

    def __init__(self, clock: ManualClock, busy: list[float], immediate: bool) -> None:
        self.clock, self.busy, self.immediate = clock, list(busy), immediate
        self.writes: list[tuple[float, bytes]] = []
        self.closed: CloseMode | None = None

    def _record(self, data: bytes) -> None:
        self.writes.append((round(self.clock.now(), 9), data))
        if self.busy:
            self.clock.advance(self.busy.pop(0))

    async def write(self, data: bytes) -> None:
        self._record(data)

    def write_now(self, data: bytes) -> bool:
        if self.immediate:
            self._record(data)
        return self.immediate

    async def close(self, mode: CloseMode, last: bytes = b"") -> None:
        if last:
            self._record(last)
        self.closed = mode

    async def hang(self) -> None:  # pragma: no cover - no Hang is drawn
        await asyncio.Event().wait()


@st.composite
def timelines(draw: st.DrawFn) -> tuple[Step, ...]:
    """Preamble, then tokens (the first of them ``first``; a few more marked so, as after a tool
    call) and keep-alives at non-decreasing deadlines, then the finish, [DONE] and the close."""
    kinds = draw(st.lists(st.sampled_from(["token", "token", "token", "first", "keepalive"]), max_size=60))
    gaps = draw(st.lists(st.sampled_from([0.0, 0.0, 0.001, 0.01, 0.25]), min_size=len(kinds) + 1))
    texts = draw(st.lists(st.sampled_from(["a", "字", '"', "\n", " hi", "é"]), min_size=len(kinds)))
    steps, time, index = [Step(0.0, Preamble())], 0.0, 0
    for n, kind in enumerate(kinds):
        time += gaps[n]
        if kind == "keepalive":
            steps.append(Step(time, KeepAlive()))
            continue
        steps.append(Step(time, Token(index, texts[n], first=index == 0 or kind == "first")))
        index += 1
    time += gaps[len(kinds)]
    steps += [Step(time, Finish("stop", 0)), Step(time, Done()), Step(time, Close("eof", "completed"))]
    return tuple(steps)


async def played(
    fmt: str, steps: Iterable[Step], busy: list[float], immediate: bool
) -> tuple[BusySink, tuple[object, ...]]:
    clock = ManualClock(start=0.0)
    sink = BusySink(clock, busy, immediate)
    request = ApiRequest(model="m", stream=True, prompt_tokens=1, options=FORMAT_OPTIONS[fmt])
    encoder = FORMATS[fmt].stream_encoder(make_scenario(reply="x"), request, CONTEXT)
    out = await play(steps, encoder, sink, clock)
    return sink, (out.outcome, out.tokens_sent, out.bytes_sent, round(out.max_lateness, 9))


@pytest.mark.parametrize("fmt", sorted(FORMAT_OPTIONS))
@settings(max_examples=80, deadline=None)
@given(
    steps=timelines(),
    busy=st.lists(st.sampled_from([0.0, 0.0005, 0.003, 0.02, 0.3]), max_size=20),
    immediate=st.booleans(),
)
async def test_a_shared_timeline_writes_what_the_steps_one_by_one_write(
    fmt: str, steps: tuple[Step, ...], busy: list[float], immediate: bool
) -> None:
    lazy, lazy_out = await played(fmt, iter(steps), busy, immediate)  # an iterator: no table
    shared, shared_out = await played(fmt, steps, busy, immediate)
    assert shared.writes == lazy.writes
    assert shared_out == lazy_out
    assert shared.closed == lazy.closed == "eof"


def test_a_table_marks_where_each_run_of_plain_text_ends() -> None:
    steps = (
        Step(0.0, Preamble()),
        Step(0.0, Token(0, "a", first=True)),
        Step(0.0, Token(1, "b")),
        Step(0.1, Token(2, "c")),
        Step(0.1, KeepAlive()),
        Step(0.2, Token(3, "d")),
        Step(0.3, Finish("stop", 0)),
    )
    runs = Runs(steps)
    assert runs.end == [0, 1, 4, 4, 4, 6, 6, 7]
    assert runs.texts[2:4] == [b'"b"', b'"c"']
    assert runs.due(2, 10.0, 10.05, 100) == 3  # only "b" is due by then
    assert runs.due(2, 10.0, 10.1, 100) == 4
    assert runs.due(2, 10.0, 10.1, 1) == 3  # at most one
    assert runs.due(4, 10.0, 99.0, 100) == 4  # a keep-alive: no run
    assert runs_of(steps) is runs_of(steps)  # built once per tuple
