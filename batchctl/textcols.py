"""Plain-text tables for terminals: columns aligned by display width.

A holder or purpose may hold wide characters (CJK, most emoji: two terminal columns
each) or combining marks (none): `len` would misalign every column after them.
Widths follow Unicode's East Asian Width property (`unicodedata`), as terminals do;
zero-width joiner sequences and variation selectors are approximated.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence


def width(text: str) -> int:
    """Terminal columns of `text`: 2 for wide and fullwidth characters, 0 for combining
    marks and format characters (ZWJ, variation selectors), 1 otherwise."""
    n = 0
    for ch in text:
        if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Cf"):
            continue
        n += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return n


def columns(rows: Sequence[Sequence[str]], free_last: bool = False) -> str:
    """`rows` (the header first) as lines of columns two spaces apart, each padded to
    its widest cell; `free_last`: the last column is not padded (free text, long).
    Trailing spaces are stripped."""
    if not rows:
        return ""
    padded = len(rows[0]) - (1 if free_last else 0)
    widths = [max(width(r[i]) for r in rows) for i in range(padded)]
    lines = []
    for r in rows:
        cells = [c + " " * (w - width(c)) for c, w in zip(r[:padded], widths, strict=True)]
        lines.append("  ".join([*cells, *r[padded:]]).rstrip())
    return "\n".join(lines)
