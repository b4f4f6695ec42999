"""Durations and sizes as people write and read them: `8h`, `1h30m`, `2d3h`, `1.5 MiB`."""

from __future__ import annotations

import math
import re

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
# No duration anyone means is longer: beyond it, a typo (or `<400 nines>w`, which is
# infinite as a float).
MAX_DURATION_SECONDS = 100 * 365 * 86400.0


def shown(text: str, limit: int = 40) -> str:
    """`text` quoted for an error message, cut to about `limit` characters."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + f"... ({len(text)} chars)"


class ZeroDuration(ValueError):
    """A well-formed duration of zero ('0s', '0h0m'): the caller may say so rather than
    call the text malformed."""


def parse_duration(text: str) -> float:
    """'90s', '30m', '8h', '2d', '1w' or combinations like '1h30m' (each unit once,
    largest first, as Prometheus writes them) -> seconds; ValueError naming the fix.

    A bare number is refused: '--ttl 8' meaning 8 seconds is never what anyone wants.
    """
    s = text.strip().lower().replace(" ", "")
    pos = 0
    total = 0.0
    last = math.inf  # the size of the previous unit: each unit once, largest first
    for m in _DURATION.finditer(s):
        if m.start() != pos:
            break
        size = _UNITS[m.group(2)]
        if size >= last:
            raise ValueError(
                f"{shown(text)} is not a duration: each unit at most once, largest first, "
                "e.g. 1d12h or 1h30m"
            )
        last = size
        total += float(m.group(1)) * size
        pos = m.end()
    if s and re.fullmatch(r"\d+(\.\d+)?", s) and float(s) > 0:
        raise ValueError(
            f"{shown(text)} is not a duration: give it a unit, e.g. 30m, 8h, 2d or {s}s "
            "(a bare number is refused: it is seldom meant as seconds)"
        )
    if s and re.fullmatch(r"[0.]+", s):
        raise ZeroDuration(f"{shown(text)}: the duration must be longer than zero")
    if not s or pos != len(s):
        raise ValueError(
            f"{shown(text)} is not a duration: use a number with a unit s, m, h, d or w, "
            "e.g. 30m, 8h, 2d or 1h30m"
        )
    if total <= 0:
        raise ZeroDuration(f"{shown(text)}: the duration must be longer than zero")
    if not math.isfinite(total) or total > MAX_DURATION_SECONDS:
        raise ValueError(f"{shown(text)}: too long; a duration is at most 100 years (36500d)")
    return total


def format_duration(seconds: float) -> str:
    """A short human duration with the two largest units: '2d3h', '7h59m', '45s'."""
    s = round(abs(seconds))
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if s >= size or (unit == "s" and not parts):
            parts.append(f"{s // size}{unit}")
            s %= size
    return "".join(parts[:2])


def format_bytes(n: float) -> str:
    """Bytes in binary units: '512 B', '1.5 KiB', '3.2 MiB', '1.0 GiB'."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"
