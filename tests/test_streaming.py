"""The write loop against a manual clock: what is written, when, and in how many writes."""

from __future__ import annotations

import asyncio

import pytest

from mockllm.calls import Outcome
from mockllm.clock import Callback, ManualClock
from mockllm.events import CloseMode
from mockllm.formats import ApiRequest, StreamContext
from mockllm.formats.openai_chat import OpenAIChatEncoder
from mockllm.scenario import Scenario
from mockllm.streaming import BATCH, play
from mockllm.timeline import build_timeline, stream_timeline

from .conftest import make_scenario

CONTEXT = StreamContext(id="chatcmpl-1", created=1700000000, model="m")
REQUEST = ApiRequest(model="m", stream=True, prompt_tokens=1)


class RecordingSink:
    """Records each write with the clock's time. ``immediate``: whether it takes writes at once
    (the server's sink while the reader keeps up), so paced tokens go out from the clock's ticks;
    every test in this module runs both ways, and must see the same writes."""

    immediate = True

    def __init__(self, clock: ManualClock, fail_after: int | None = None) -> None:
        self.clock = clock
        self.writes: list[tuple[float, bytes]] = []
        self.closed: CloseMode | None = None
        self.hung = False
        self.fail_after = fail_after
        self.immediate_writes = 0

    def record(self, data: bytes) -> None:
        if self.fail_after is not None and len(self.writes) >= self.fail_after:
            raise ConnectionResetError("client went away")
        self.writes.append((round(self.clock.now() - 1000.0, 6), data))

    async def write(self, data: bytes) -> None:
        self.record(data)

    def write_now(self, data: bytes) -> bool:
        if self.immediate:
            self.record(data)
            self.immediate_writes += 1
        return self.immediate

    async def close(self, mode: CloseMode, last: bytes = b"") -> None:
        if last:
            self.record(last)
        self.closed = mode

    async def hang(self) -> None:
        self.hung = True
        await asyncio.Event().wait()


@pytest.fixture(autouse=True, params=[True, False], ids=["ticked", "awaited"])
def immediate(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    monkeypatch.setattr(RecordingSink, "immediate", request.param)
    return bool(request.param)


class Timeline:
    """How :func:`run` hands the steps over."""

    shared = False


@pytest.fixture(autouse=True, params=[False, True], ids=["lazy", "shared"])
def shared(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Every test also plays the timeline as the server does: one tuple shared by the streams of
    a scenario (:func:`stream_timeline`), whose runs of text tokens go out through the escaped
    table of :mod:`mockllm.runs`, not the generator's step-by-step path. The writes must match."""
    monkeypatch.setattr(Timeline, "shared", request.param)
    return bool(request.param)


async def run(scenario: Scenario, **kwargs: object) -> tuple[RecordingSink, Outcome, ManualClock]:
    clock = ManualClock()
    sink = RecordingSink(clock, **kwargs)  # type: ignore[arg-type]
    encoder = OpenAIChatEncoder(scenario, REQUEST, CONTEXT)
    coalesce = scenario.wire.flush == "due"
    steps = stream_timeline(scenario) if Timeline.shared else build_timeline(scenario)
    outcome = await play(steps, encoder, sink, clock, coalesce=coalesce)
    return sink, outcome, clock


async def test_writes_happen_at_absolute_deadlines(immediate: bool) -> None:
    scenario = make_scenario(reply="abc", timing={"first_token": "1s", "per_token": "100ms"})
    sink, outcome, clock = await run(scenario)
    assert [t for t, _ in sink.writes] == [1.0, 1.1, 1.2]
    # all three from the clock's ticks, c with the finish and [DONE] due with it; the close (the
    # coroutine's) has nothing left to write
    assert sink.immediate_writes == (3 if immediate else 0)
    assert clock.sleeps == [1001.0, 1001.1, 1001.2]  # deadlines from the start, not from each write
    assert b"[DONE]" in sink.writes[-1][1]
    assert b'"finish_reason":"stop"' in sink.writes[-1][1]
    assert sink.closed == "eof"
    assert (outcome.outcome, outcome.tokens_sent) == ("completed", 3)
    assert outcome.bytes_sent == sum(len(d) for _, d in sink.writes)
    assert outcome.max_lateness == 0


async def test_a_long_run_due_at_once_goes_out_in_batches() -> None:
    """Zero delay: all the tokens are due at once; they go out BATCH events a write, so the
    client reads the first batch while the next is encoded, and nothing is lost or reordered."""
    tokens = 3 * BATCH + 100
    scenario = make_scenario(reply="".join(chr(0x4E00 + i) for i in range(tokens)))
    sink, outcome, _ = await run(scenario)
    counts = [data.count(b"data: ") for _, data in sink.writes]
    # The first token is two events (the role chunk, then its text); the last write carries the
    # finish and [DONE].
    assert counts == [BATCH + 1] + [BATCH] * 2 + [100 + 2]
    assert all(t == 0.0 for t, _ in sink.writes)
    encoder = OpenAIChatEncoder(scenario, REQUEST, CONTEXT)
    expected = b"".join(encoder.encode(step.event) for step in build_timeline(scenario))
    assert b"".join(data for _, data in sink.writes) == expected
    assert outcome.tokens_sent == tokens


async def test_a_late_loop_catches_up_in_one_write_without_drifting() -> None:
    scenario = make_scenario(reply="abcdef", timing={"per_token": "100ms"})
    clock = ManualClock()
    sink = RecordingSink(clock)

    class SlowSink(RecordingSink):
        def record(self, data: bytes) -> None:
            super().record(data)
            if len(self.writes) == 2:
                clock.advance(0.35)  # the process stalls for 350 ms after the second write

    sink = SlowSink(clock)
    encoder = OpenAIChatEncoder(scenario, REQUEST, CONTEXT)
    outcome = await play(build_timeline(scenario), encoder, sink, clock)
    times = [t for t, _ in sink.writes]
    assert times == [0.0, 0.1, 0.45, 0.5]  # c, d and e were due by 0.45: one write; f on time
    assert sink.writes[2][1].count(b"data: ") == 3
    assert outcome.max_lateness == pytest.approx(0.25)  # c, due at 0.2, went out at 0.45


async def test_a_late_wake_up_is_recorded_as_lateness() -> None:
    """Under load the loop wakes a stream after its deadline; the call log must say by how much."""

    class Overslept(ManualClock):
        """Wakes the third wait 4 ms late, whichever way it waits."""

        def _late(self) -> None:
            self.advance(0.004 if len(self.sleeps) == 3 else 0.0)

        async def sleep_until(self, deadline: float) -> None:
            await super().sleep_until(deadline)
            self._late()

        def call_at(self, deadline: float, callback: Callback) -> None:
            super().call_at(deadline, lambda: (self._late(), callback()))

    clock = Overslept()
    scenario = make_scenario(reply="abcd", timing={"per_token": "10ms"})
    encoder = OpenAIChatEncoder(scenario, REQUEST, CONTEXT)
    outcome = await play(build_timeline(scenario), encoder, RecordingSink(clock), clock)
    assert outcome.max_lateness == pytest.approx(0.004)
    assert clock.sleeps == pytest.approx([1000.01, 1000.02, 1000.03])  # the next deadline did not move


async def test_flush_event_writes_each_event_alone() -> None:
    sink, _, _ = await run(make_scenario(reply="ab", wire={"flush": "event"}))
    assert len(sink.writes) == 4  # a, b, finish, [DONE]


async def test_preamble_joins_the_first_write() -> None:
    sink, _, _ = await run(make_scenario(reply="a", wire={"bom": True}))
    assert sink.writes[0][1].startswith(b"\xef\xbb\xbfdata: ")


async def test_fragments_are_separate_writes() -> None:
    scenario = make_scenario(reply="a日b", faults=[{"at": 1, "split": "utf8"}])
    sink, outcome, _ = await run(scenario)
    # "a", the head, the tail 20 ms later, then the rest (already due) together
    assert [t for t, _ in sink.writes] == [0.0, 0.0, 0.02, 0.02]
    assert sink.writes[1][1].endswith(b"\xe6")
    assert sink.writes[2][1].startswith(b"\x97\xa5")
    assert sink.writes[2][1].endswith(b"\n\n")
    assert outcome.tokens_sent == 3


async def test_disconnect_outcomes() -> None:
    sink, outcome, _ = await run(make_scenario(reply="abc", faults=[{"at": 1, "disconnect": "reset"}]))
    assert sink.closed == "reset"
    assert (outcome.outcome, outcome.tokens_sent) == ("fault:reset", 1)


async def test_client_gone_is_an_outcome_not_an_error() -> None:
    scenario = make_scenario(reply="abc", timing={"per_token": "10ms"})
    sink, outcome, _ = await run(scenario, fail_after=1)
    assert outcome.outcome == "client-disconnected"
    assert sink.closed is None


async def test_hang_waits_until_cancelled() -> None:
    clock = ManualClock()
    sink = RecordingSink(clock)
    scenario = make_scenario(reply="ab", faults=[{"at": 1, "stall": "forever"}])
    outcome = Outcome()
    task = asyncio.create_task(
        play(
            build_timeline(scenario),
            OpenAIChatEncoder(scenario, REQUEST, CONTEXT),
            sink,
            clock,
            outcome=outcome,
        )
    )
    while not sink.hung:
        await asyncio.sleep(0)
    assert outcome.outcome == "fault:stall-forever"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert outcome.outcome == "client-disconnected"
    assert len(sink.writes) == 1


async def test_a_token_that_encodes_to_nothing_writes_nothing() -> None:
    """Ollama sends a tool call whole, so its argument fragments encode to no bytes: an empty
    write would be a zero-length chunk, the end of a chunked body, before the call is sent."""
    from mockllm.formats.ollama import OllamaEncoder

    scenario = make_scenario(
        reply="ab", tool_calls=[{"name": "f", "arguments": {"x": 1}}], timing={"per_token": "10ms"}
    )
    clock = ManualClock()
    sink = RecordingSink(clock)
    encoder = OllamaEncoder(scenario, REQUEST, CONTEXT, chat=True)
    outcome = await play(build_timeline(scenario), encoder, sink, clock, coalesce=True)
    assert all(data for _, data in sink.writes)
    assert b'"tool_calls"' in b"".join(data for _, data in sink.writes)
    assert outcome.outcome == "completed"
