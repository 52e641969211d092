"""Runs of plain text tokens in a shared timeline, escaped ahead: a zero-delay stream's fast path.

Most of a stream is text tokens framed alike (:attr:`~mockllm.encoder.EventEncoder.text_frame`),
and the streams of one scenario share one tuple of steps (:func:`~mockllm.timeline.stream_timeline`).
:class:`Runs` is built once per such tuple: each step's escaped text, where each run of plain
text tokens ends, and the deadlines. A run due at once (zero delay, or a loop catching up) is then
one bisection and one slice of pre-escaped texts, not a pass of Python per token: at 10,000
tokens that is most of the server's time per stream.

A plain text token is one the encoder frames alike every time: not a tool call's fragment, not
the stream's first token (which may open the reply, as OpenAI's role chunk does).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence

from .encoder import json_string
from .events import Step, Token

#: At most this many tables are kept (one per shared timeline; replaced scenario sets leave old ones).
KEEP = 256


class Runs:
    """The plain text token runs of one tuple of steps."""

    __slots__ = ("deadlines", "end", "size", "texts")

    def __init__(self, steps: Sequence[Step]) -> None:
        self.size = len(steps)
        self.deadlines = [step.deadline for step in steps]
        texts: list[bytes] = []
        for step in steps:
            event = step.event
            plain = type(event) is Token and event.tool is None and not event.first
            texts.append(json_string(event.text) if plain else b"")  # type: ignore[union-attr]
        self.texts = texts
        # end[i]: the index after the run step i is in; i itself when step i is not plain text.
        end = list(range(self.size + 1))
        for index in range(self.size - 1, -1, -1):
            if texts[index]:  # an escaped text is never empty (it has its quotes)
                end[index] = end[index + 1]
        self.end = end

    def due(self, index: int, start: float, now: float, most: int) -> int:
        """The index after the run's steps from ``index`` on that are due by ``now`` (deadlines
        from ``start``), at most ``most`` of them; ``index`` itself when it is not a plain token."""
        stop = min(self.end[index], index + most)
        if stop <= index:
            return index
        if start + self.deadlines[stop - 1] <= now:  # all of it (zero delay): no bisection
            return stop
        return bisect_right(self.deadlines, now, index, stop, key=lambda deadline: start + deadline)


_tables: dict[int, tuple[Sequence[Step], Runs]] = {}


def runs_of(steps: tuple[Step, ...]) -> Runs:
    """The table of a shared timeline, built at its first use."""
    hit = _tables.get(id(steps))
    if hit is not None and hit[0] is steps:
        return hit[1]
    if len(_tables) >= KEEP:
        _tables.clear()
    table = Runs(steps)
    _tables[id(steps)] = (steps, table)
    return table
