"""Time, injected. The only module that reads the event loop's clock or waits on it.

The streaming layer asks a :class:`Clock` for "now", to wake it at an absolute deadline, or to run
a callback at one; tests pass a :class:`ManualClock` and assert the deadlines that were scheduled,
without waiting.
"""

from __future__ import annotations

import asyncio
import functools
import heapq
import math
import time
from collections.abc import Callable
from typing import Protocol

Callback = Callable[[], object]


class Clock(Protocol):
    def now(self) -> float:
        """Monotonic seconds."""
        ...

    def wall(self) -> float:
        """Seconds since the epoch, for ``created`` fields."""
        ...

    async def sleep_until(self, deadline: float) -> None:
        """Return at ``deadline`` (a value of :meth:`now`), at once if it has passed."""
        ...

    def call_at(self, deadline: float, callback: Callback) -> None:
        """Run ``callback`` on the loop at ``deadline``. There is no handle to cancel it: a
        callback that may no longer be wanted checks that itself, which costs less."""
        ...

    def run_due(self) -> None:
        """Run now the callbacks whose deadline has passed, without waiting for the loop."""
        ...


class LoopClock:
    """The running event loop's monotonic clock, with one shared ticker for every stream.

    A thousand streams at 10 ms per token would each put a timer on the loop's heap for every
    token, and each timer is a heap push and pop (Python comparisons) and a handle. Instead,
    deadlines are rounded up to the next ``resolution`` (1 ms, the granularity of the default
    loop's epoll wait anyway), and everything due in the same tick shares one timer whose callback
    runs them all. A wake-up is never early and at most ``resolution`` later than the loop alone
    would manage; the deadlines themselves are untouched, so nothing drifts.

    asyncio runs timers only between two passes over its ready callbacks, and one pass can be a
    burst of request handlers: a thousand requests arriving together are ~150 ms of handlers on
    a 2-core machine, during which every playing stream would stall. The server therefore calls
    :meth:`run_due` as each request starts and ends, which runs the ticks already due there and
    then; their timers later find nothing left to run.
    """

    def __init__(self, resolution: float = 0.001) -> None:
        self.resolution = resolution
        self._loops: dict[asyncio.AbstractEventLoop, _Ticks] = {}

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    def wall(self) -> float:
        return time.time()

    async def sleep_until(self, deadline: float) -> None:
        loop = asyncio.get_running_loop()
        if deadline <= loop.time():
            return
        future: asyncio.Future[None] = loop.create_future()
        self.call_at(deadline, functools.partial(_wake, future))
        await future  # a cancelled sleeper cancels only its own future, which the tick then skips

    def call_at(self, deadline: float, callback: Callback) -> None:
        loop = asyncio.get_running_loop()
        tick = math.ceil(deadline / self.resolution)
        ticks = self._loops.get(loop)
        if ticks is None:
            ticks = self._loops[loop] = _Ticks()
        callbacks = ticks.pending.get(tick)
        if callbacks is None:
            callbacks = ticks.pending[tick] = []
            heapq.heappush(ticks.order, tick)
            loop.call_at(tick * self.resolution, self._run, loop, tick)
        callbacks.append(callback)

    def run_due(self) -> None:
        loop = asyncio.get_running_loop()
        ticks = self._loops.get(loop)
        now = loop.time()
        if ticks is not None and ticks.order and ticks.order[0] * self.resolution <= now:
            self._run(loop, math.floor(now / self.resolution))

    def _run(self, loop: asyncio.AbstractEventLoop, last: int) -> None:
        """Run the ticks up to ``last``, in order; a tick's callbacks in the order they came."""
        ticks = self._loops.get(loop)
        if ticks is None:
            return
        order, pending = ticks.order, ticks.pending
        while order and order[0] <= last:
            # what a callback schedules is ahead of now, so in a tick after ``last``: this ends
            for callback in pending.pop(heapq.heappop(order)):
                try:
                    callback()
                except Exception as exc:  # one stream's bug must not stop the others' ticks
                    loop.call_exception_handler(
                        {"message": f"mockllm: clock callback {callback!r} failed", "exception": exc}
                    )
        if not order:
            del self._loops[loop]  # nothing pending: a closed loop is not kept alive


class _Ticks:
    """One loop's pending ticks: callbacks by tick number, and the tick numbers as a heap. A tick
    run ahead of its timer is gone from both, so its timer finds nothing."""

    __slots__ = ("order", "pending")

    def __init__(self) -> None:
        self.pending: dict[int, list[Callback]] = {}
        self.order: list[int] = []


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class ManualClock:
    """A clock for tests: time moves only when something waits, straight to its deadline.

    ``sleeps`` records every deadline waited for (by :meth:`sleep_until` or :meth:`call_at`), in
    order.
    """

    def __init__(self, start: float = 1000.0, wall: float = 1_700_000_000.0) -> None:
        self.time = start
        self._wall = wall
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.time

    def wall(self) -> float:
        return self._wall + self.time

    async def sleep_until(self, deadline: float) -> None:
        self.sleeps.append(deadline)
        self.time = max(self.time, deadline)
        await asyncio.sleep(0)

    def call_at(self, deadline: float, callback: Callback) -> None:
        self.sleeps.append(deadline)

        def run() -> None:
            self.time = max(self.time, deadline)
            callback()

        asyncio.get_running_loop().call_soon(run)

    def run_due(self) -> None:
        """Nothing: time here moves only when something waits."""

    def advance(self, seconds: float) -> None:
        """Let time pass as if the process were busy (to test catching up after falling behind)."""
        self.time += seconds
