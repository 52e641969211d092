"""Time, injected. The only module that reads the event loop's clock or waits on it.

The streaming layer asks a :class:`Clock` for "now" and to wake it at an absolute deadline; tests
pass a :class:`ManualClock` and assert the deadlines that were scheduled, without waiting.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


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


class LoopClock:
    """The running event loop's monotonic clock; waits with ``loop.call_at`` on absolute deadlines."""

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    def wall(self) -> float:
        return time.time()

    async def sleep_until(self, deadline: float) -> None:
        loop = asyncio.get_running_loop()
        if deadline <= loop.time():
            return
        future = loop.create_future()
        handle = loop.call_at(deadline, _wake, future)
        try:
            await future
        finally:
            handle.cancel()


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class ManualClock:
    """A clock for tests: time moves only when something sleeps, straight to its deadline.

    ``sleeps`` records every deadline waited for, in order.
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

    def advance(self, seconds: float) -> None:
        """Let time pass as if the process were busy (to test catching up after falling behind)."""
        self.time += seconds
