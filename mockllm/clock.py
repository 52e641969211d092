"""Time, injected. The only module that reads the event loop's clock or waits on it.

The streaming layer asks a :class:`Clock` for "now", to wake it at an absolute deadline, or to run
a callback at one; tests pass a :class:`ManualClock` and assert the deadlines that were scheduled,
without waiting.
"""

from __future__ import annotations

import asyncio
import functools
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


class LoopClock:
    """The running event loop's monotonic clock, with one shared ticker for every stream.

    A thousand streams at 10 ms per token would each put a timer on the loop's heap for every
    token, and each timer is a heap push and pop (Python comparisons) and a handle. Instead,
    deadlines are rounded up to the next ``resolution`` (1 ms, the granularity of the default
    loop's epoll wait anyway), and everything due in the same tick shares one timer whose callback
    runs them all. A wake-up is never early and at most ``resolution`` later than the loop alone
    would manage; the deadlines themselves are untouched, so nothing drifts.
    """

    def __init__(self, resolution: float = 0.001) -> None:
        self.resolution = resolution
        self._ticks: dict[tuple[asyncio.AbstractEventLoop, int], list[Callback]] = {}

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
        key = (loop, tick)
        callbacks = self._ticks.get(key)
        if callbacks is None:
            callbacks = self._ticks[key] = []
            loop.call_at(tick * self.resolution, self._fire, key)
        callbacks.append(callback)

    def _fire(self, key: tuple[asyncio.AbstractEventLoop, int]) -> None:
        for callback in self._ticks.pop(key):  # one added meanwhile for this tick gets a new timer
            try:
                callback()
            except Exception as exc:  # one stream's bug must not stop the others' ticks
                key[0].call_exception_handler(
                    {"message": f"mockllm: clock callback {callback!r} failed", "exception": exc}
                )


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

    def advance(self, seconds: float) -> None:
        """Let time pass as if the process were busy (to test catching up after falling behind)."""
        self.time += seconds
