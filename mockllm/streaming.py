"""The write loop: the only code that writes a stream to a socket and waits for deadlines.

:func:`play` walks a timeline, waiting until each step's absolute deadline (never "a delay after
the last write", which drifts), encodes the event, and hands bytes to a :class:`Sink`. Events that
are already due together (zero delay, or catching up after the loop fell behind) share one write
(of at most :data:`BATCH` events) unless the scenario says ``flush: event``; a
:class:`~mockllm.events.Fragment` is always a write of its own, since its whole point is the write
boundary. Paced tokens are written from the clock's shared ticker without waking the coroutine
(see :class:`_Player`).

Every way a stream ends goes through here and is recorded in the :class:`Outcome`:
``completed``; a fault (``fault:truncate``, ``fault:fin``, ``fault:reset``, ``fault:mid-event``,
``fault:error_event``, ``fault:stall-forever``); or ``client-disconnected`` when the client hangs
up first (a normal event, not an error).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Coroutine, Iterable
from operator import length_hint
from typing import Protocol

from .calls import Outcome
from .clock import Clock
from .encoder import EventEncoder, json_string
from .events import Close, CloseMode, Fragment, Hang, Step, Token
from .formats import StreamEncoder
from .runs import runs_of

#: The most events one write carries: a long run due at once (zero delay) goes out in writes of
#: about 130 KB (OpenAI chat chunks), so the client reads the first while the next is encoded.
#: ``python -m bench.zero``: 256 and 1,024 cost 0.58 µs of server CPU per token, 512 0.52 µs,
#: 2,048 over 1 µs (asyncio's transport then holds most of each write and copies it on).
BATCH = 512
#: A write that took longer than this waited for the reader (one that did not takes microseconds).
WAITED = 0.001


class Sink(Protocol):
    """Where a stream's bytes go: an HTTP response in the server, a list in tests."""

    async def write(self, data: bytes) -> None: ...

    def write_now(self, data: bytes) -> bool:
        """Write ``data`` at once if that needs no waiting (the peer is keeping up); else write
        nothing and return False, and the caller uses :meth:`write`. Raises ConnectionError as
        :meth:`write` does."""
        ...

    async def close(self, mode: CloseMode, last: bytes = b"") -> None:
        """End the stream as ``mode`` says, after writing ``last`` (for ``eof``, in the same write
        as the ending, which saves a send per stream)."""
        ...

    def hang(self) -> Awaitable[None]:
        """Wait, sending nothing, until the client leaves (the task is then cancelled)."""
        ...


def play(
    steps: Iterable[Step],
    encoder: StreamEncoder,
    sink: Sink,
    clock: Clock,
    *,
    coalesce: bool = True,
    outcome: Outcome | None = None,
) -> Coroutine[None, None, Outcome]:
    """Write the stream described by ``steps``; return (and fill in) its outcome.

    The player's own coroutine, not one that awaits it: every frame of an open stream's await
    chain lives as long as the stream (``python -m bench.memory``)."""
    out = outcome if outcome is not None else Outcome()
    return _Player(steps, encoder, sink, clock, coalesce, out).play()


class _Player:
    """One stream being played. Two ways to reach a deadline, same bytes either way:

    - the coroutine (:meth:`play`) sleeps until it, then writes what is due: every kind of event;
    - a run of paced tokens is written by the clock's tick instead (:meth:`_tick`), one callback
      per token with no coroutine wake-up, which is most of the cost of a thousand paced streams.
      The tick hands the stream back to the coroutine at the first step that is not a token, or
      when the sink cannot take bytes at once (a slow reader: the coroutine waits for it to drain).
    """

    # Slots: a thousand held streams each keep one of these (and a ResponseSink) alive.
    __slots__ = (
        "_handback",
        "_next",
        "clock",
        "coalesce",
        "encoder",
        "framed",
        "out",
        "pending",
        "shared",
        "sink",
        "start",
        "steps",
    )

    def __init__(
        self,
        steps: Iterable[Step],
        encoder: StreamEncoder,
        sink: Sink,
        clock: Clock,
        coalesce: bool,
        out: Outcome,
    ) -> None:
        self.steps = iter(steps)
        # A shared timeline (a tuple): its table of runs (mockllm.runs) is looked up, and built
        # at its first use, only when a run of text tokens is due at once.
        self.shared: tuple[Step, ...] | None = steps if type(steps) is tuple else None
        self.encoder = encoder
        # An ABC's isinstance is slow, and _take_due runs per tick: asked once per stream.
        self.framed = encoder if isinstance(encoder, EventEncoder) else None
        self.sink = sink
        self.clock = clock
        self.coalesce = coalesce
        self.out = out
        self.start = clock.now()
        self.pending: list[bytes] = []  # encoded, due, not yet written
        self._next: Step | None = None  # the step the tick is waiting for
        self._handback: asyncio.Future[Step | None] | None = None

    async def play(self) -> Outcome:
        """Write the stream; a client that hangs up is recorded as such. (One coroutine: every
        frame of an open stream's await chain lives as long as the stream.)"""
        out, clock = self.out, self.clock
        try:
            now = self.start
            step = next(self.steps, None)
            while step is not None:
                due = self.start + step.deadline
                # ``now`` is read again only when a step looks early, so a run of events already due
                # (zero delay, catching up) costs one clock read, not one per event.
                if due > now:
                    now = clock.now()
                    if due > now:
                        await self.flush()
                        if self.coalesce and type(step.event) is Token:
                            step = await self._ticked(step)
                            now = clock.now()
                            continue
                        await clock.sleep_until(due)
                        now = clock.now()  # a busy loop wakes us late: that is lateness too
                if self.coalesce and type(step.event) is Token:  # the hot path: most steps are tokens
                    step, full = self._take_due(step, now, limit=BATCH)
                    if full:  # a long run due at once: the client can start
                        await self.flush()  # reading while the rest is encoded,
                        await asyncio.sleep(0)  # and the other streams' ticks and requests run
                    continue
                if now - due > out.max_lateness:
                    out.max_lateness = now - due
                event = step.event
                step = next(self.steps, None)
                if isinstance(event, Close):
                    out.outcome = event.outcome
                    await self._waiting(self.sink.close(event.mode, self._take()))
                    return out
                if isinstance(event, Hang):
                    await self.flush()
                    out.outcome = "fault:stall-forever"
                    await self.sink.hang()
                    return out
                data = self.encoder.encode(event)
                if type(event) is Token or (  # a token here: ``flush: event``
                    isinstance(event, Fragment) and event.part == "tail" and isinstance(event.event, Token)
                ):
                    out.tokens_sent += 1
                if not data:
                    continue
                if isinstance(event, Fragment):  # a write of its own: what was due goes first
                    await self.flush()
                    self.pending.append(data)
                    await self.flush()
                    now = clock.now()
                else:
                    self.pending.append(data)
                    if not self.coalesce:
                        await self.flush()
                        now = clock.now()
            out.outcome = "completed"
            await self._waiting(self.sink.close("eof", self._take()))
        except ConnectionError:
            out.outcome = "client-disconnected"
        except asyncio.CancelledError:
            out.outcome = "client-disconnected"
            raise
        return out

    def _sent(self, size: int, now: float) -> None:
        # Recorded before writing: whoever reads the outcome once the bytes arrive sees them counted.
        out = self.out
        if out.first_byte is None:
            out.first_byte = now
        out.last_byte = now
        out.bytes_sent += size

    def _take(self) -> bytes:
        """The pending events as one write, counted as sent."""
        if not self.pending:
            return b""
        data = b"".join(self.pending)
        self.pending.clear()
        self._sent(len(data), self.clock.now())
        return data

    async def flush(self) -> None:
        data = self._take()
        if data:  # tokens may encode to nothing (Ollama's tool-call fragments): no empty write
            await self._waiting(self.sink.write(data))

    async def _waiting(self, write: Awaitable[None]) -> None:
        """Await a write, adding the time it waited for a slow reader to drain the socket to
        :attr:`Outcome.backpressure_wait` (a write that needs no waiting takes microseconds)."""
        clock, out = self.clock, self.out
        out.blocked_since = before = clock.now()  # seen by others only while the write waits
        try:
            await write
        finally:
            out.blocked_since = None
        waited = clock.now() - before
        if waited > WAITED:
            out.backpressure_wait += waited

    async def _ticked(self, step: Step) -> Step | None:
        """Let the clock's tick write tokens from ``step`` on; the step it stops at (None: the
        end), with whatever it encoded but could not write left in :attr:`pending`."""
        handback: asyncio.Future[Step | None] = asyncio.get_running_loop().create_future()
        self._handback = handback
        self._next = step
        self.clock.call_at(self.start + step.deadline, self._tick)
        try:
            return await handback
        finally:
            self._handback = None  # cancelled (the client left): the next tick does nothing

    def _take_due(self, step: Step | None, now: float, limit: int = 0) -> tuple[Step | None, bool]:
        """Encode into :attr:`pending` the tokens from ``step`` on that are due by ``now``, until
        it holds ``limit`` events if given; return the first step not taken (a later token,
        another event, None at the end), and whether ``limit`` stopped it. The tight loop of a
        zero-delay stream, and of a tick.

        While the encoder frames every text token alike (:attr:`EventEncoder.text_frame`), a run
        of them is one join of their escaped texts with the frame between them, not a bytes object
        per token: the same bytes, for about half the work per token. With ``limit`` (the
        coroutine's runs, not a tick's token or two) and a shared timeline, the escaped texts of a
        run come from its :class:`~mockllm.runs.Runs` in one slice."""
        steps, out, pending = self.steps, self.out, self.pending
        shared = self.shared if limit else None
        encode, append, framed = self.encoder.encode, pending.append, self.framed
        frame = framed.text_frame if framed is not None else None
        texts: list[bytes] = []  # the escaped texts of the run being joined
        add = texts.append
        # Deadlines only grow along a timeline: the first token taken is the latest.
        start = self.start
        if (
            step is not None
            and type(step.event) is Token
            and now - (start + step.deadline) > out.max_lateness
        ):
            out.max_lateness = now - (start + step.deadline)
        tokens = 0
        room = max(limit - len(pending), 1) if limit else -1  # -1: no limit
        while step is not None and tokens != room:
            event = step.event
            if type(event) is not Token or start + step.deadline > now:
                break
            if frame is not None and event.tool is None and not event.first:
                if shared is not None:  # the step's index: its tuple's size less what is left after it
                    runs = runs_of(shared)
                    index = runs.size - length_hint(steps) - 1
                    stop = runs.due(index, start, now, room - tokens)
                    if stop > index + 1:
                        texts += runs.texts[index:stop]
                        tokens += stop - index
                        steps.__setstate__(stop)  # type: ignore[attr-defined]  # a tuple's iterator
                        step = next(steps, None)
                        continue
                tokens += 1
                add(json_string(event.text))
            else:
                tokens += 1
                if texts:
                    pending += _joined(frame, texts)
                    texts = []
                    add = texts.append
                append(encode(event))
                frame = framed.text_frame if framed is not None else None  # a token may open one
            step = next(steps, None)
        if texts:
            pending += _joined(frame, texts)
        out.tokens_sent += tokens
        return step, tokens == room

    def _tick(self) -> None:
        handback = self._handback
        if handback is None or handback.done():
            return
        try:
            now = self.clock.now()
            step, _ = self._take_due(self._next, now)
            if step is not None and type(step.event) is not Token and self.start + step.deadline <= now:
                step = self._take_plain(step, now)  # the finish and [DONE], a tool call's start or end
            pending = self.pending
            if pending:
                data = pending[0] if len(pending) == 1 else b"".join(pending)
                if data:  # never empty: an empty chunk is the end of a chunked body
                    if not self.sink.write_now(data):  # a slow reader: the coroutine writes it,
                        handback.set_result(step)  # waiting for the drain
                        return
                    self._sent(len(data), now)
                pending.clear()
            if step is not None and type(step.event) is Token:  # the next token, due later
                self._next = step
                self.clock.call_at(self.start + step.deadline, self._tick)
                return
        except Exception as exc:  # ConnectionError, or a bug: the coroutine raises it
            handback.set_exception(exc)
            return
        handback.set_result(step)

    def _take_plain(self, step: Step | None, now: float) -> Step | None:
        """For a tick, after its tokens: encode into :attr:`pending` what is due by ``now`` from
        ``step`` on, the plain events (a finish, ``[DONE]``, a tool call's start or end, a
        keep-alive) and the tokens between them; return the first step not taken: a later step,
        or one only the coroutine plays (a close, a hang, a fragment: a write of its own), or
        None at the end.

        So the last token goes out at its deadline with the finish and the sentinel due with it,
        not when the coroutine next runs: under a burst of requests that wake-up waits behind
        their handlers (at 1,000 streams on 2 cores the last token was ~100 ms late, p50)."""
        out, start, encode = self.out, self.start, self.encoder.encode
        while step is not None and start + step.deadline <= now:
            event = step.event
            if type(event) is Token:
                step, _ = self._take_due(step, now)
                continue
            if isinstance(event, (Close, Hang, Fragment)):
                break
            if now - (start + step.deadline) > out.max_lateness:
                out.max_lateness = now - (start + step.deadline)
            data = encode(event)
            if data:
                self.pending.append(data)
            step = next(self.steps, None)
        return step


def _joined(frame: tuple[bytes, bytes] | None, texts: list[bytes]) -> tuple[bytes, bytes, bytes]:
    """A run of text tokens' events: each escaped text between the frame's head and tail, as
    three pieces for :attr:`_Player.pending` (joined once, when written: a 130 KB run is copied
    once there, not again for each end)."""
    assert frame is not None
    head, tail = frame
    return head, (tail + head).join(texts), tail
