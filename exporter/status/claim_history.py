"""The last few claim events per batch, for the /status page (read on page views only).

Read from the claim history stream (batchctl/claims/history.py) with one XREVRANGE
when someone opens /status, never on the scrape path: Prometheus scrapes do not pay
for it. A broker that does not answer leaves the block out, it never fails the page.
The history is batchctl's (its claims live in the broker's Redis), so it is read with
a client of its own (`ClaimHistory`), not through the broker reader.
"""

from __future__ import annotations

import html
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import redis

from batchctl.brokerurl import connect
from batchctl.claims import ClaimEvent, last_per_batch
from batchctl.claims.history import history_key, parse_entries
from batchctl.config import BrokerConfig
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


class ClaimHistory:
    """The claim history on the broker's Redis: a client of its own, connected on the
    first page view (scrapes never use it) and closed by `close`. Thread-safe."""

    def __init__(self, cfg: BrokerConfig) -> None:
        self.cfg = cfg
        self._client: redis.Redis | None = None
        self._lock = threading.Lock()

    def recent(self, queues: Sequence[str]) -> RecentEvents | None:
        """`recent_events` of `queues`; None when the broker does not answer."""
        with self._lock:
            if self._client is None:
                # Raw bytes, as the claim store reads: unreadable entries are skipped.
                self._client = connect(self.cfg, decode_responses=False)
            client = self._client
        return recent_events(client, self.cfg.global_keyprefix, queues)

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()


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
