"""Columns stay aligned whatever the characters: wide ones take two terminal columns,
combining marks none."""

from __future__ import annotations

import pytest

from batchctl.textcols import columns, width


@pytest.mark.parametrize(
    ("text", "cols"),
    [
        ("alice", 5),
        ("Zoë", 3),  # precomposed ë
        ("Zoe\u0308", 3),  # e + combining diaeresis
        ("名前", 4),
        ("🚀", 2),
        ("Zoë🚀名前", 9),
        ("ｆｕｌｌ", 8),  # fullwidth Latin
        ("a\u200db", 2),  # a zero-width joiner
        ("", 0),
    ],
)
def test_width_is_terminal_columns(text: str, cols: int) -> None:
    assert width(text) == cols


def test_columns_line_up_after_wide_cells() -> None:
    rows = [("HOLDER", "PURPOSE", "DETAIL"), ("Zoë🚀名前", "reindex", "x"), ("bob", "名前", "y y")]
    lines = columns(rows, free_last=True).splitlines()
    # The third column starts at the same terminal column on every line.
    lasts = ("DETAIL", "x", "y y")
    starts = {width(line[: line.rindex(last)]) for line, last in zip(lines, lasts, strict=True)}
    assert starts == {width("Zoë🚀名前") + 2 + len("PURPOSE") + 2}
    assert columns([("A", "B"), ("long", "")]).splitlines() == ["A     B", "long"]
