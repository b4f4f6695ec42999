"""The last few claim events per batch, for the /status page (read on page views only).

Read through the claim store's `recent` (one XREVRANGE on the Redis store) when someone
opens /status, never on the scrape path: Prometheus scrapes do not pay for it. A store
that does not answer leaves the block out, it never fails the page. The store is
opened on the first page view (`ClaimHistory`), whichever kind `claims.store` names.
"""

from __future__ import annotations

import html
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from batchctl.claims import ClaimEvent, StoreError, last_per_batch
from batchctl.claims.store import ClaimReader
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
    store: ClaimReader, queues: Sequence[str], per_batch: int = PER_BATCH
) -> RecentEvents | None:
    """Up to `per_batch` newest events of each batch in `queues`, oldest first; None when
    the store does not answer (or holds something else under the history's name)."""
    try:
        read = store.recent(SCAN)
    except StoreError as e:
        log.warning("cannot read the claim history", error=type(e).__name__)
        return None
    if read.skipped:
        log.warning("unreadable claim history entries skipped", skipped=read.skipped)
    wanted = set(queues)
    events = [e for e in read.events if e.queue in wanted]
    return RecentEvents(last_per_batch(events, per_batch), read.skipped)


class ClaimHistory:
    """The claim store, opened by `open_store` on the first page view (scrapes never use
    it) and closed by `close`. Thread-safe."""

    def __init__(self, open_store: Callable[[], ClaimReader]) -> None:
        self._open = open_store
        self._store: ClaimReader | None = None
        self._lock = threading.Lock()

    def recent(self, queues: Sequence[str]) -> RecentEvents | None:
        """`recent_events` of `queues`; None when the store does not answer."""
        with self._lock:
            if self._store is None:
                self._store = self._open()
            store = self._store
        return recent_events(store, queues)

    def close(self) -> None:
        with self._lock:
            store, self._store = self._store, None
        if store is not None:
            store.close()


def render_history(events: Mapping[str, Sequence[ClaimEvent]], now: float, skipped: int = 0) -> str:
    """A small table under the queues: batch, when, event, who, detail; and how many
    unreadable entries were skipped, if any."""
    rows = []
    for queue in sorted(events):
        for e in reversed(events[queue]):  # newest first within a batch
            ago = format_duration(max(0.0, now - e.at))
            who = e.who_shown if e.who == e.holder else f"{e.who_shown} ({e.holder}'s claim)"
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
