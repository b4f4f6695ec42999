"""Reading what the CLI prints: table columns, and JSON held to the standard."""

from __future__ import annotations

import json
import re
from typing import Any


def columns(header: str, line: str) -> dict[str, str]:
    """A table line cut at the header's column starts (cells may hold single spaces)."""
    starts = [(m.start(), m.group()) for m in re.finditer(r"\S+(?: \S+)*", header)]
    ends = [s for s, _ in starts[1:]] + [None]
    return {name: line[s:e].strip() for (s, name), e in zip(starts, ends, strict=True)}


def claim_rows(output: str) -> dict[str, str]:
    """queue -> its CLAIM cell, from `batchctl status`'s table."""
    lines = output.splitlines()
    return {line.split()[0]: columns(lines[0], line)["CLAIM"] for line in lines[1:]}


def strict(text: str) -> Any:
    """JSON as the standard has it: Infinity and NaN are errors."""

    def refuse(name: str) -> None:
        raise ValueError(f"not standard JSON: {name}")

    return json.loads(text, parse_constant=refuse)
