from __future__ import annotations

import pytest

from mockllm.duration import format_duration, parse_duration


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
    ],
)
def test_parse(text: object, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["10 parsecs", "1h", "-1s", "", "fast", True, None, [1]])
def test_rejects(bad: object) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(bad)


def test_negative_number() -> None:
    with pytest.raises(ValueError, match="negative"):
        parse_duration(-1)


def test_format() -> None:
    assert [format_duration(s) for s in (0.1, 1.5, 0.0125)] == ["100ms", "1.5s", "12.5ms"]
