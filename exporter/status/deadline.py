"""A claim's deadline and what it used, as the status page and `batchctl status` say them
(pure).

A batch is behind its deadline when its work would be done after it at the current pace
(exporter/stats.py `expected_finish`: inf while nothing drains), or the deadline has
passed with work left; CeleryBatchBehindDeadline alerts on the same comparison of
`celery_batch_expected_finish_timestamp_seconds` with
`celery_batch_finish_by_timestamp_seconds`.
"""

from __future__ import annotations

import math
from datetime import datetime

from batchctl.claims import Claim
from batchctl.cost import Cost, Prices
from batchctl.units import format_duration

BEHIND = "behind"
ON_PACE = "on pace"
UNKNOWN = "unknown"


def deadline_state(c: Claim, expected: float | None, now: float) -> str | None:
    """BEHIND, ON_PACE or UNKNOWN for a claim with a deadline (None without one).
    `expected`: when the work would be done (inf: never at this pace; None: nothing
    left, or not known yet)."""
    if c.finish_by is None:
        return None
    if expected is None:
        return ON_PACE if now <= c.finish_by else UNKNOWN
    return BEHIND if expected > c.finish_by else ON_PACE


def deadline_text(c: Claim, expected: float | None, now: float) -> str:
    """'finish by 17:00 (in 2h): on pace, done about 16:20', '...: behind, nothing
    drains', or '' without a deadline."""
    state = deadline_state(c, expected, now)
    if state is None or c.finish_by is None:
        return ""
    left = c.finish_by - now
    when = f"in {format_duration(left)}" if left >= 0 else f"{format_duration(-left)} ago"
    head = f"finish by {clock(c.finish_by, now)} ({when})"
    if expected is None:
        return f"{head}: nothing left" if state == ON_PACE else head
    if math.isinf(expected):
        return f"{head}: {state}, nothing drains"
    return f"{head}: {state}, done about {clock(expected, now)}"


def usage_text(c: Claim, prices: Prices) -> str:
    """'used 1.20 replica-hours, 0.60 USD, 36 g CO2e' (the autoscaler's count so far)."""
    return f"used {Cost(c.replica_seconds, prices)}"


def clock(ts: float, now: float) -> str:
    """Local time: '14:02' on the day of `now`, '2025-03-01 14:02' on another."""
    at = datetime.fromtimestamp(ts).astimezone()
    same_day = at.date() == datetime.fromtimestamp(now).astimezone().date()
    return at.strftime("%H:%M" if same_day else "%Y-%m-%d %H:%M")
