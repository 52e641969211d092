from __future__ import annotations

import pytest

from mockllm.duration import PATTERN, format_duration, parse_duration, why_not
from mockllm.errors import show
from mockllm.schemaerrors import schema


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("100ms", 0.1),
        ("1.5s", 1.5),
        ("2m", 120.0),
        (3, 3.0),
        (0.25, 0.25),
        ("2", 2.0),
        (" 10 ms ", 0.01),
        (".5s", 0.5),
        ("0", 0.0),
        ("1h", 3600.0),
        ("24h", 86400.0),
    ],
)
def test_parse(text: object, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["10 parsecs", "1d", "", "fast", True, None, [1]])
def test_rejects(bad: object) -> None:
    with pytest.raises(ValueError, match="is not a duration") as caught:
        parse_duration(bad)
    assert str(caught.value) == f"{show(bad)} is not a duration (e.g. 100ms, 1.5s, 2m)"


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (-1, "-1 is not a duration: it is negative"),
        ("-1s", "'-1s' is not a duration: it is negative"),
        (float("nan"), "nan is not a duration: it is not a number"),
        (
            float("inf"),
            "inf is not a duration: it is longer than a day (24h), the longest mockllm waits; "
            "use stall: forever to wait for ever",
        ),
        (
            "25h",
            "'25h' is not a duration: it is longer than a day (24h), the longest mockllm waits; "
            "use stall: forever to wait for ever",
        ),
        (
            10**400,
            "a 401-digit integer is not a duration: it is longer than a day (24h), the longest "
            "mockllm waits; use stall: forever to wait for ever",
        ),
    ],
)
def test_says_why_a_duration_is_out_of_range(bad: object, message: str) -> None:
    with pytest.raises(ValueError, match="is not a duration: it is") as caught:
        parse_duration(bad)
    assert str(caught.value) == message
    assert message.endswith(str(why_not(bad)))


def test_why_not_is_silent_for_what_is_no_duration_at_all() -> None:
    assert [why_not(v) for v in ("fast", True, None, "1s")] == [None, None, None, None]


def test_the_schema_pattern_is_this_module_s() -> None:
    assert schema()["$defs"]["duration"]["anyOf"][1]["pattern"] == PATTERN


def test_format() -> None:
    assert [format_duration(s) for s in (0.1, 1.5, 0.0125)] == ["100ms", "1.5s", "12.5ms"]
