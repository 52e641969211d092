"""What a held stream costs the server, counted by tracemalloc (exact, whatever the machine's load):
``bench/memory.py``'s harness, run small. A server child process holds 100 streams in
``stall: forever``; the figures are its heap growth per stream, split by the file that allocated."""

from __future__ import annotations

from typing import Any

import pytest

from bench.memory import held

pytestmark = pytest.mark.functional


@pytest.fixture(scope="module")
def figures() -> dict[str, Any]:
    return held(100, trace=True)


def test_a_held_stream_keeps_no_parsed_copy_of_its_request_body(figures: dict[str, Any]) -> None:
    """The body is kept as the bytes aiohttp read (``Call.body``; ``Call.json`` parses them when
    asked), so the JSON decoder's objects do not live as long as the stream: 649 B a stream for
    this small body before, more for a long conversation. What the decoder made and the stream
    keeps is the conversation's own strings (role, text, model: 158 B)."""
    decoded = figures["traced_bytes_by_file"].get("decoder.py", 0)
    assert decoded < 250, figures["traced_bytes_by_file"]


def test_a_held_stream_costs_no_more_than_it_does(figures: dict[str, Any]) -> None:
    """A ceiling on the heap per held stream: 15.26 KiB at 100 streams (15.04 at 1,000, 15.87
    before Call.body; aiohttp's request and connection objects are ~10 KiB of it). A change that
    adds to what every open stream keeps shows here first."""
    assert figures["traced_kib"] < 15.7, figures["traced_bytes_by_file"]
