"""The status page's pieces that are not rows: its style sheet, escaping, sparklines."""

from __future__ import annotations

import html
from collections.abc import Sequence

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5rem; color: #1d2330; }
h1 { font-size: 1.4rem; margin: 0 0 .2rem; }
h2 { font-size: 1.1rem; margin: 1.5rem 0 .4rem; }
.meta { color: #5b6475; margin-bottom: 1rem; font-size: .9rem; }
.down { background: #b3261e; color: #fff; padding: .5rem .8rem; border-radius: 4px; }
table { border-collapse: collapse; min-width: 60rem; }
th, td { padding: .45rem .7rem; border-bottom: 1px solid #dde1e8; text-align: right;
  vertical-align: middle; }
th { background: #f1f3f7; font-weight: 600; font-size: .85rem; }
td.name, th.name { text-align: left; }
td.depth { font-weight: 700; border-radius: 3px; white-space: nowrap; }
td.depth svg { vertical-align: middle; margin-left: .4rem; }
.tier-good { background: #d7f2dd; color: #14532d; }
.tier-fine { background: #fff4c2; color: #6b4e00; }
.tier-care { background: #ffd8a8; color: #7c2d00; }
.tier-danger { background: #f8b4b4; color: #7f1010; }
.warn { color: #b3261e; font-weight: 600; }
.muted { color: #7a8292; font-style: italic; white-space: nowrap; }
.flag { background: #6d28d9; color: #fff; font-weight: 700; font-size: .75rem;
  padding: .1rem .35rem; border-radius: 3px; }
.act-up { color: #15803d; font-weight: 600; }
.act-down { color: #1d4ed8; font-weight: 600; }
.act-hold { color: #b45309; font-weight: 600; }
tr.stale td { background: #eceef2 !important; color: #8b93a1 !important; }
tr.stale td svg polyline { stroke: #a9b0bc; }
.legend span { display: inline-block; padding: .1rem .5rem; margin-right: .4rem;
  border-radius: 3px; }
"""

SPARK_WIDTH = 90
SPARK_HEIGHT = 18


def esc(value: object) -> str:
    """Any value from outside (names, claims, errors, decisions), safe in text and attributes."""
    return html.escape(str(value), quote=True)


def sparkline_svg(points: Sequence[int | None]) -> str:
    """A small line of `points` (oldest first; None breaks the line), scaled to its own
    maximum; empty when there is nothing to draw. Numbers only: nothing to escape."""
    known = [p for p in points if p is not None]
    if len(known) < 2:
        return ""
    top = max(max(known), 1)
    step = SPARK_WIDTH / max(1, len(points) - 1)
    lines: list[list[str]] = []
    current: list[str] = []
    for i, p in enumerate(points):
        if p is None:
            if len(current) > 1:
                lines.append(current)
            current = []
            continue
        y = SPARK_HEIGHT - 1 - (SPARK_HEIGHT - 2) * p / top
        current.append(f"{i * step:.1f},{y:.1f}")
    if len(current) > 1:
        lines.append(current)
    body = "".join(
        f'<polyline points="{" ".join(line)}" fill="none" stroke="#334155" stroke-width="1.5"/>'
        for line in lines
    )
    return (
        f'<svg class="spark" width="{SPARK_WIDTH}" height="{SPARK_HEIGHT}" '
        f'viewBox="0 0 {SPARK_WIDTH} {SPARK_HEIGHT}" role="img" '
        f'aria-label="waiting, last 30 minutes">{body}</svg>'
    )
