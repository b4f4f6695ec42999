"""One Celery worker as the events show it: heartbeats, running tasks, its queues (no I/O).

exporter/events/aggregate.py keeps one `Worker` per node name and decides with
`alive` (Celery's own heartbeat rule) when it is gone.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from celery.events.state import heartbeat_expires

# Heartbeat interval assumed for a worker before its first heartbeat (Celery's default).
DEFAULT_FREQ = 2.0
# A worker that did not answer `active_queues` is asked again after 1 s, 2 s, 4 s ... up
# to RETRY_SECONDS: one that just came online sends its events before its pidbox (where
# control requests arrive) is consuming.
FIRST_RETRY_SECONDS = 1.0
RETRY_SECONDS = 30.0


class Worker:
    __slots__ = (
        "asked_at", "freq", "heartbeat_at", "last_seen", "prev_heartbeat_at", "queues",
        "running", "tries", "unseen",
    )  # fmt: skip

    def __init__(self, now: float) -> None:
        self.freq: float | None = None  # seconds between heartbeats; None: none seen yet
        self.heartbeat_at: float | None = None
        self.prev_heartbeat_at = float("-inf")
        self.last_seen = now
        # The queues it consumes (labels), by its answer to active_queues; None: unknown.
        self.queues: tuple[str, ...] | None = None
        self.asked_at: float | None = None  # when active_queues was last sent to it
        self.tries = 0  # requests it has not answered since its last answer
        # uuid -> local start time, in start order
        self.running: OrderedDict[str, float] = OrderedDict()
        self.unseen = 0  # executing by its heartbeat, not by our events

    def ask_due(self, now: float, refresh: float) -> bool:
        """Time to ask it (again) which queues it consumes?"""
        if self.asked_at is None:
            return True
        if self.queues is not None and self.tries == 0:
            wait = refresh
        else:
            wait = min(FIRST_RETRY_SECONDS * 2 ** max(0, self.tries - 1), RETRY_SECONDS, refresh)
        return now - self.asked_at >= wait

    @property
    def queue(self) -> str | None:
        """The one queue it consumes, when it consumes exactly one."""
        q = self.queues
        return q[0] if q is not None and len(q) == 1 else None


def alive(w: Worker, now: float) -> bool:
    """Celery's rule (celery.events.state.Worker.alive): the last heartbeat is younger
    than two heartbeat intervals. A worker that sends none (--without-heartbeat) is kept
    while it runs tasks we know of, else for a minute after its last event."""
    if w.heartbeat_at is not None:
        return bool(now < heartbeat_expires(w.heartbeat_at, w.freq or DEFAULT_FREQ))
    return bool(w.running) or now - w.last_seen < 60.0


def event_time(ev: Mapping[str, Any]) -> float:
    """When we received it (the receiver's `local_received`): our clock, not the worker's."""
    for key in ("local_received", "timestamp"):
        t = ev.get(key)
        if isinstance(t, int | float) and math.isfinite(t):
            return float(t)
    return 0.0
