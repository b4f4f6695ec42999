"""Durations as the CLI and the config read and print them (batchctl/units.py)."""

from __future__ import annotations

import re

import pytest

from batchctl.units import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("45s", 45),
        ("30m", 1800),
        ("8h", 8 * 3600),
        ("2d", 2 * 86400),
        ("1w", 7 * 86400),
        ("1h30m", 5400),
        (" 1H 30M ", 5400),
        ("1.5h", 5400),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text", ["", "8", "8x", "h", "-1h", "0m", "1h-30m", "1h 30", "eight hours"]
)
def test_parse_duration_errors_name_the_format(text: str) -> None:
    with pytest.raises(ValueError, match=r"30m, 8h, 2d|longer than zero"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("3600", "e.g. 30m, 8h, 2d or 3600s"),
        ("1.5", "e.g. 30m, 8h, 2d or 1.5s"),
        ("0", "longer than zero"),
        ("1d1d", "each unit at most once, largest first"),
        ("1m1h", "each unit at most once, largest first"),
        ("30m1h", "each unit at most once, largest first"),
    ],
)
def test_parse_duration_says_what_to_change(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=re.escape(says)):
        parse_duration(text)


@pytest.mark.parametrize("text", ["9" * 400 + "w", "9" * 400 + ".5s", "5300w", "36501d"])
def test_parse_duration_refuses_infinite_and_absurd_durations(text: str) -> None:
    with pytest.raises(ValueError, match=r"too long; a duration is at most 100 years") as info:
        parse_duration(text)
    assert len(str(info.value)) < 150  # the input is not echoed whole
    assert parse_duration("36500d") == 36500 * 86400


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (45, "45s"), (90, "1m30s"), (3600, "1h"), (28_740, "7h59m"), (183_600, "2d3h")],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
