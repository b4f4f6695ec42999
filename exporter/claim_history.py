"""The last few claim events per batch, for the /status page (read on page views only).

Read from the claim history stream (batchctl/claims/history.py) with one XREVRANGE
when someone opens /status, never on the scrape path: Prometheus scrapes do not pay
for it. A broker that does not answer leaves the block out, it never fails the page.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import redis

from batchctl.claims import ClaimEvent, last_per_batch
from batchctl.claims.history import history_key, parse_entries
from batchctl.log import get_logger
from batchctl.units import format_duration

log = get_logger("batchctl.status")

PER_BATCH = 3
SCAN = 100  # the newest events looked at


@dataclass(frozen=True)
class RecentEvents:
    """The newest events per batch, oldest first, and how many of the entries looked at
    could not be read as events (skipped)."""

    by_queue: dict[str, list[ClaimEvent]]
    skipped: int = 0


def recent_events(
    client: redis.Redis, prefix: str, queues: Sequence[str], per_batch: int = PER_BATCH
) -> RecentEvents | None:
    """Up to `per_batch` newest events of each batch in `queues`, oldest first; None when
    the broker does not answer (or the key is not a stream)."""
    try:
        entries: list[Any] = client.xrevrange(history_key(prefix), count=SCAN) or []
    except redis.RedisError as e:
        log.warning("cannot read the claim history", error=type(e).__name__)
        return None
    read = parse_entries(entries)
    if read.skipped:
        log.warning("unreadable claim history entries skipped", skipped=read.skipped)
    wanted = set(queues)
    events = [e for e in read.events if e.queue in wanted]
    return RecentEvents(last_per_batch(events, per_batch), read.skipped)


def render_history(events: Mapping[str, Sequence[ClaimEvent]], now: float, skipped: int = 0) -> str:
    """A small table under the queues: batch, when, event, who, detail; and how many
    unreadable entries were skipped, if any."""
    rows = []
    for queue in sorted(events):
        for e in reversed(events[queue]):  # newest first within a batch
            ago = format_duration(max(0.0, now - e.at))
            who = e.who if e.who == e.holder else f"{e.who} ({e.holder}'s claim)"
            rows.append(
                f'<tr data-queue="{html.escape(queue)}"><td class="name">{html.escape(queue)}</td>'
                f'<td>{ago} ago</td><td class="name">{html.escape(e.kind)}</td>'
                f'<td class="name">{html.escape(who)}</td>'
                f'<td class="name">{html.escape(e.purpose)}</td>'
                f'<td class="name">{html.escape(e.detail)}</td></tr>'
            )
    note = (
        f'<p class="meta warn" id="claim-history-skipped">{skipped} unreadable history '
        "entries skipped</p>"
        if skipped
        else ""
    )
    if not rows:
        return note
    return (
        '<h2 id="claim-history-title">Recent claim events</h2>'
        '<table id="claim-history"><thead><tr><th class="name">Queue</th><th>When</th>'
        '<th class="name">Event</th><th class="name">Who</th><th class="name">Purpose</th>'
        '<th class="name">Detail</th></tr></thead><tbody>'
        + "".join(rows)
        + "</tbody></table>"
        + '<p class="meta">All of it: <code>batchctl history</code></p>'
        + note
    )
