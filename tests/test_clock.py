"""The loop clock's shared ticker: one loop timer per tick, never early, cancellation-safe."""

from __future__ import annotations

import asyncio
import time

import pytest

from mockllm.clock import LoopClock, ManualClock


@pytest.fixture
async def timers(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The deadlines of the timers the clock puts on the running loop."""
    loop = asyncio.get_running_loop()
    scheduled: list[float] = []
    call_at = loop.call_at

    def counting(when: float, *args: object, **kwargs: object) -> asyncio.TimerHandle:
        scheduled.append(when)
        return call_at(when, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(loop, "call_at", counting)
    return scheduled


async def test_sleepers_due_in_the_same_tick_share_one_timer(timers: list[float]) -> None:
    clock = LoopClock(resolution=0.001)
    base = clock.now() + 0.02
    deadlines = [base + i * 0.0001 for i in range(5)] + [base + 0.0105]
    woke: list[tuple[float, float]] = []

    async def sleeper(deadline: float) -> None:
        await clock.sleep_until(deadline)
        woke.append((deadline, clock.now()))

    await asyncio.gather(*(sleeper(d) for d in deadlines))
    # the first five fall in one or two 1 ms ticks; the last is 10 ms on, in a tick of its own
    assert 2 <= len(timers) <= 3
    assert all(now >= deadline - 1e-9 for deadline, now in woke)  # never early
    assert len(woke) == len(deadlines)


async def test_callbacks_run_at_their_tick_in_order_of_scheduling() -> None:
    clock = LoopClock()
    done = asyncio.get_running_loop().create_future()
    order: list[str] = []
    deadline = clock.now() + 0.005
    clock.call_at(deadline, lambda: order.append("a"))
    clock.call_at(deadline, lambda: order.append("b"))
    clock.call_at(deadline + 0.003, lambda: done.set_result(clock.now()))
    assert await done >= deadline + 0.003
    assert order == ["a", "b"]


async def test_a_cancelled_sleeper_leaves_the_others_on_time() -> None:
    clock = LoopClock()
    deadline = clock.now() + 0.01
    cancelled = asyncio.create_task(clock.sleep_until(deadline))
    kept = asyncio.create_task(clock.sleep_until(deadline))
    await asyncio.sleep(0)
    cancelled.cancel()
    await kept
    assert cancelled.cancelled()
    assert clock.now() >= deadline


async def test_a_failing_callback_does_not_stop_the_tick() -> None:
    clock = LoopClock()
    loop = asyncio.get_running_loop()
    errors: list[dict[str, object]] = []
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    ran = loop.create_future()
    deadline = clock.now() + 0.002

    def broken() -> None:
        raise RuntimeError("boom")

    clock.call_at(deadline, broken)
    clock.call_at(deadline, lambda: ran.set_result(True))
    assert await ran
    loop.set_exception_handler(None)
    assert isinstance(errors[0]["exception"], RuntimeError)


async def test_a_past_deadline_returns_at_once() -> None:
    clock = LoopClock()
    before = clock.now()
    await clock.sleep_until(before - 1)
    assert clock.now() - before < 0.5


async def test_manual_clock_runs_callbacks_at_their_deadline() -> None:
    clock = ManualClock()
    seen = asyncio.get_running_loop().create_future()
    clock.call_at(1000.25, lambda: seen.set_result(clock.now()))
    assert await seen == 1000.25
    assert clock.sleeps == [1000.25]


async def test_run_due_runs_what_is_due_ahead_of_its_timer_and_only_once() -> None:
    """A handler that keeps the loop busy (here: 20 ms without yielding) calls run_due: what is
    due runs there and then, in order, what is not waits, and the timers run nothing twice."""
    clock = LoopClock()
    ran: list[str] = []
    later = asyncio.get_running_loop().create_future()
    start = clock.now()
    clock.call_at(start + 0.002, lambda: ran.append("a"))
    clock.call_at(start + 0.004, lambda: ran.append("b"))
    clock.call_at(start + 0.5, lambda: later.set_result(ran.copy()))
    time.sleep(0.02)  # the loop is busy: no timer can run
    clock.run_due()
    assert ran == ["a", "b"]
    assert await later == ["a", "b"]
    await asyncio.sleep(0.01)
    assert ran == ["a", "b"]


async def test_run_due_with_nothing_due_runs_nothing() -> None:
    clock = LoopClock()
    clock.run_due()  # nothing scheduled at all
    ran = asyncio.get_running_loop().create_future()
    clock.call_at(clock.now() + 0.05, lambda: ran.set_result(clock.now()))
    clock.run_due()
    assert not ran.done()
    assert await ran > 0


async def test_a_callback_for_a_tick_already_run_early_still_runs() -> None:
    clock = LoopClock()
    ran: list[str] = []
    deadline = clock.now() + 0.001
    clock.call_at(deadline, lambda: ran.append("first"))
    time.sleep(0.005)
    clock.run_due()
    again = asyncio.get_running_loop().create_future()
    clock.call_at(deadline, lambda: again.set_result(True))  # same tick, which has run
    assert await again
    assert ran == ["first"]


async def test_manual_clock_run_due_does_not_move_time() -> None:
    clock = ManualClock()
    seen: list[float] = []
    clock.call_at(1000.5, lambda: seen.append(clock.now()))
    clock.run_due()
    assert (clock.now(), seen) == (1000.0, [])
