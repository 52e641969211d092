"""Timelines: deadlines are absolute offsets, faults shape the sequence of events."""

from __future__ import annotations

import itertools

import pytest

from mockllm.events import (
    Close,
    Done,
    Finish,
    Fragment,
    Hang,
    KeepAlive,
    Malformed,
    Preamble,
    StreamError,
    Token,
)
from mockllm.timeline import SPLIT_GAP, build_timeline

from .conftest import make_scenario


def steps(**data: object) -> list[tuple[float, object]]:
    return [(round(s.deadline, 6), s.event) for s in build_timeline(make_scenario(**data))]


def test_plain_reply_schedule() -> None:
    assert steps(reply="abc", timing={"first_token": "1s", "per_token": "100ms"}) == [
        (0.0, Preamble()),
        (1.0, Token(0, "a", first=True)),
        (1.1, Token(1, "b")),
        (1.2, Token(2, "c")),
        (1.2, Finish("stop", 3)),
        (1.2, Done()),
        (1.2, Close("eof", "completed")),
    ]


def test_deadlines_are_absolute_over_a_thousand_tokens() -> None:
    timeline = list(build_timeline(make_scenario(reply="x" * 1000, timing={"per_token": "10ms"})))
    tokens = [s.deadline for s in timeline if isinstance(s.event, Token)]
    assert tokens[-1] == pytest.approx(9.99, abs=1e-9)


def test_jitter_is_reproducible_bounded_and_seeded() -> None:
    def deadlines(seed: int) -> list[float]:
        scenario = make_scenario(reply="x" * 50, timing={"per_token": "10ms", "jitter": "4ms", "seed": seed})
        return [s.deadline for s in build_timeline(scenario) if isinstance(s.event, Token)]

    first = deadlines(1)
    assert first == deadlines(1)
    assert first != deadlines(2)
    gaps = [b - a for a, b in itertools.pairwise(first)]
    assert all(0.006 - 1e-9 <= g <= 0.014 + 1e-9 for g in gaps)
    assert len(set(round(g, 6) for g in gaps)) > 10


def test_time_scale_multiplies_every_delay() -> None:
    scenario = make_scenario(
        reply="ab", timing={"first_token": "1s", "per_token": "1s"}, faults=[{"at": 1, "stall": "2s"}]
    )
    deadlines = [s.deadline for s in build_timeline(scenario, time_scale=0.5) if isinstance(s.event, Token)]
    assert deadlines == [0.5, 2.0]
    assert [s.deadline for s in build_timeline(scenario, time_scale=0)] == [0.0] * 6


def test_stall_shifts_later_tokens_and_fills_with_keepalives() -> None:
    assert steps(
        reply="abc",
        timing={"per_token": "100ms"},
        faults=[{"at": 1, "stall": "1s", "keepalive": {"every": "400ms"}}],
    )[1:5] == [
        (0.0, Token(0, "a", first=True)),
        (0.5, KeepAlive()),
        (0.9, KeepAlive()),
        (1.1, Token(1, "b")),
    ]


def test_stall_forever_hangs_and_keepalives_never_end() -> None:
    assert steps(reply="ab", faults=[{"at": 1, "stall": "forever"}])[-1] == (0.0, Hang())
    endless = build_timeline(
        make_scenario(reply="ab", faults=[{"at": 0, "stall": "forever", "keepalive": {"every": "1s"}}])
    )
    taken = [next(endless) for _ in range(100)]
    assert all(isinstance(s.event, KeepAlive) for s in taken[1:])
    assert taken[-1].deadline == 99.0


def test_non_streaming_timeline_is_finite_without_keepalives() -> None:
    scenario = make_scenario(reply="ab", faults=[{"at": 0, "stall": "forever", "keepalive": {"every": "1s"}}])
    assert [s.event for s in build_timeline(scenario, streaming=False)] == [Preamble(), Hang()]


def test_mid_event_stall_writes_head_then_tail() -> None:
    token = Token(1, "b")
    assert steps(reply="abc", faults=[{"at": 1, "stall": "2s", "mid_event": True}])[2:4] == [
        (0.0, Fragment(token, "head", "half")),
        (2.0, Fragment(token, "tail", "half")),
    ]


def test_split_writes_two_fragments_a_gap_apart() -> None:
    token = Token(1, "日")
    assert steps(reply="a日b", timing={"per_token": "1s"}, faults=[{"at": 1, "split": "utf8"}])[2:5] == [
        (1.0, Fragment(token, "head", "utf8")),
        (1.0 + SPLIT_GAP, Fragment(token, "tail", "utf8")),
        (2.0, Token(2, "b")),
    ]


def test_a_split_s_gap_is_its_own_and_scales_with_time() -> None:
    token = Token(1, "b")
    split = {"at": 1, "split": {"byte": 3, "gap": "5ms"}}
    assert steps(reply="abc", timing={"per_token": "1s"}, faults=[split])[2:4] == [
        (1.0, Fragment(token, "head", 3)),
        (1.005, Fragment(token, "tail", 3)),
    ]
    scenario = make_scenario(reply="abc", timing={"per_token": "1s"}, faults=[split])
    scaled = [(round(s.deadline, 6), s.event) for s in build_timeline(scenario, time_scale=0.5)]
    assert scaled[2:4] == [(0.5, Fragment(token, "head", 3)), (0.5025, Fragment(token, "tail", 3))]
    # The next split without a gap of its own has the default again.
    two = [split, {"at": 2, "split": {"byte": 2}}]
    assert steps(reply="abc", timing={"per_token": "1s"}, faults=two)[4:6] == [
        (2.0, Fragment(Token(2, "c"), "head", 2)),
        (2.0 + SPLIT_GAP, Fragment(Token(2, "c"), "tail", 2)),
    ]


def test_malformed_precedes_or_replaces_and_counts_only_sent_tokens() -> None:
    kept = steps(reply="ab", faults=[{"at": 1, "malformed": "not-json"}])
    assert kept[2:4] == [(0.0, Malformed("not-json", Token(1, "b"))), (0.0, Token(1, "b"))]
    replaced = steps(reply="ab", faults=[{"at": 1, "malformed": "not-json", "replace": True}])
    assert [e for _, e in replaced][2:4] == [Malformed("not-json", Token(1, "b")), Finish("stop", 1)]


def test_replacing_the_first_token_moves_the_role() -> None:
    events = [e for _, e in steps(reply="ab", faults=[{"at": 0, "malformed": "not-json", "replace": True}])]
    assert Token(1, "b", first=True) in events


@pytest.mark.parametrize(
    ("mode", "close"),
    [
        ("truncate", Close("eof", "fault:truncate")),
        ("fin", Close("fin", "fault:fin")),
        ("reset", Close("reset", "fault:reset")),
    ],
)
def test_disconnect_ends_before_the_token(mode: str, close: Close) -> None:
    events = [e for _, e in steps(reply="abc", faults=[{"at": 2, "disconnect": mode}])]
    assert events[-2:] == [Token(1, "b"), close]


def test_disconnect_mid_event_and_at_end() -> None:
    events = [e for _, e in steps(reply="ab", faults=[{"at": "end", "disconnect": "mid-event"}])]
    assert events[-2:] == [Fragment(Finish("stop", 2), "head", "half"), Close("fin", "fault:mid-event")]


def test_error_event_then_clean_end() -> None:
    events = [e for _, e in steps(reply="ab", faults=[{"at": 1, "error_event": {"message": "m", "code": 5}}])]
    assert events[-2:] == [StreamError("m", None, 5), Close("eof", "fault:error_event")]


def test_empty_reply_finish_opens_the_reply() -> None:
    assert [e for _, e in steps(reply=[], done=False)] == [
        Preamble(),
        Finish("stop", 0, first=True),
        Close("eof", "completed"),
    ]
