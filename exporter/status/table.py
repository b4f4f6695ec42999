"""`batchctl status` as text and JSON: one row per configured batch (pure, no I/O).

The rows come from one snapshot: claims and queue numbers read in the same round trip.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from batchctl.claims import Claim, describe_expiry
from batchctl.config import Config
from batchctl.cost import Cost, Prices
from batchctl.textcols import columns
from batchctl.units import format_duration
from exporter.events.model import QueueActivity
from exporter.progress import ESTIMATE, Progress
from exporter.snapshot import QueueStats, Snapshot
from exporter.stats import expected_finish
from exporter.status.deadline import clock, deadline_state, deadline_text

NO_EVENTS = "no events"


@dataclass(frozen=True)
class StatusRow:
    queue: str
    deployment: str
    claim: Claim | None
    stats: QueueStats | None  # None: no snapshot (broker read failed)
    # Pace, failures, ETA (exporter/progress.py): rates need two readings (--watch).
    progress: Progress | None = None
    # Tasks and workers by Celery's events; None: events off or not connected.
    activity: QueueActivity | None = None
    # The queue's workers send task events (failures are known).
    task_events: bool = False
    # When the work would be done at its pace, for a claim with a deadline (stats.py).
    expected_finish: float | None = None
    prices: Prices = field(default_factory=Prices)


def status_rows(
    cfg: Config, claims: Mapping[str, Claim | None], snap: Snapshot | None
) -> list[StatusRow]:
    """One row per configured batch; queue numbers only while the broker answered."""
    up = snap is not None and snap.broker_up
    rows = []
    for b in cfg.batches:
        counted = snap.events.queue(b.queue) if snap is not None and snap.events else None
        rows.append(
            StatusRow(
                b.queue,
                b.deployment,
                claims.get(b.queue),
                snap.queue(b.queue) if up and snap is not None else None,
                snap.progress.get(b.queue) if up and snap is not None else None,
                snap.activity(b.queue) if snap is not None else None,
                counted is not None and counted.task_events,
                expected_finish(snap, b.queue) if up and snap is not None else None,
                cfg.prices_of(b.queue),
            )
        )
    return rows


def status_json(
    rows: Sequence[StatusRow], snap: Snapshot | None, now: float, ages_known: bool
) -> dict[str, object]:
    def row(r: StatusRow) -> dict[str, object]:
        s, p, a = r.stats, r.progress, r.activity
        failures = p is not None and r.task_events
        return {
            "queue": r.queue,
            "deployment": r.deployment,
            "claim": r.claim.to_json(now) if r.claim is not None else None,
            "waiting": s.waiting if s else None,
            "in_flight": s.unacked if s else None,
            # Of in flight: ETA tasks held for later, and stranded ones (nothing
            # restores them while no worker runs).
            "scheduled": s.scheduled if s else None,
            "stranded": snap.stranded(r.queue) if s and snap is not None else None,
            # Executing now and live workers, by the events (null: no events).
            "active": a.active if a else None,
            "workers": a.workers if a else None,
            "oldest_age_seconds": s.oldest_age_seconds if s and _age_known(s, ages_known) else None,
            "replicas": s.replicas if s else None,
            "ready_replicas": s.ready_replicas if s else None,
            # Completed per minute: "events", or an "estimate" from the fall of waiting +
            # in flight; null until two readings (--watch).
            "rate_per_minute": p.rate_per_minute if p else None,
            "rate_source": p.rate_source if p and p.rate_per_minute is not None else None,
            "completed_recent": p.completed_recent if failures and p else None,
            "failed_recent": p.failed_recent if failures and p else None,
            "failure_ratio": p.failure_ratio if failures and p else None,
            # Seconds to drain at the current rate; 0 nothing to do; null unknown or stalled.
            "eta_seconds": p.eta_seconds if p else None,
            # The claim's deadline: when the work would be done at its pace (null: nothing
            # left or unknown; "inf": nothing drains), and whether that is behind it.
            "expected_finish": _finite(r.expected_finish),
            "deadline": deadline_state(r.claim, r.expected_finish, now) if r.claim else None,
            # What the claim has used so far (the autoscaler's count), priced.
            "cost": Cost(r.claim.replica_seconds, r.prices).to_json() if r.claim else None,
        }

    events = None
    if snap is not None:
        events = "off" if snap.events is None else ("up" if snap.events.up else "down")
    return {
        "taken_at": now,
        "broker_up": snap.broker_up if snap is not None else None,
        "broker_error": snap.broker_error if snap is not None else None,
        "events": events,
        # Claims are read from the broker: while it does not answer, a batch's null
        # claim means unknown, not free.
        "claims_known": bool(snap is not None and snap.broker_up),
        "batches": [row(r) for r in rows],
    }


_HEADER = (
    "QUEUE", "HOLDER", "PURPOSE", "CLAIM", "WAITING", "IN FLIGHT", "SCHEDULED", "ACTIVE",
    "DONE/MIN", "FAILED 10M", "ETA", "OLDEST", "REPLICAS",
)  # fmt: skip


def _age_known(s: QueueStats, ages_known: bool) -> bool:
    """The first reading dates what it finds "now", unless the exporter's stored ages
    (batchctl:first_seen) date it: an age above 0 there is a real one. An age the
    broker cannot tell (None) is shown as unknown at once."""
    age = s.oldest_age_seconds
    return ages_known or age is None or age > 0


def render_table(
    rows: Sequence[StatusRow],
    now: float,
    ages_known: bool,
    claims_known: bool = True,
    events: str = "off",
) -> str:
    """One line per batch; claims when they could be read (the holder is "?" while the
    broker does not answer: unknown, not free), queue numbers when the snapshot has them.
    `events` is status_json's word for the consumer (off, up, down): ACTIVE says
    "no events" only when they are off."""
    table: list[tuple[str, ...]] = [_HEADER]
    for r in rows:
        c, s = r.claim, r.stats
        expiry = claim_cell(c, now, r) if c is not None else ""
        age = "-"
        if s is not None and _age_known(s, ages_known):
            age = "-" if not s.waiting else _duration(s.oldest_age_seconds)
        active = NO_EVENTS if events == "off" else "-"
        if r.activity is not None:
            active = str(r.activity.active)
        table.append(
            (
                r.queue,
                c.holder_shown if c else ("-" if claims_known else "?"),
                _clip(c.purpose, 32) if c else "",
                expiry,
                _num(s.waiting if s else None),
                _num(s.unacked if s else None),
                _num(s.scheduled if s else None),
                active,
                _rate(r.progress),
                _failed(r),
                _eta(r.progress, s),
                age,
                _replicas(s),
            )
        )
    return columns(table)


def claim_cell(c: Claim, now: float, r: StatusRow | None = None) -> str:
    """The CLAIM column: 'expires in 3h59m' or 'EXPIRED 11s ago', then what /status also
    says: 'draining since 14:02', 'scaled to 3 by alice until 14:35', the deadline
    ('finish by 17:00 (in 2h): behind, done about 17:40') and what it used."""
    if c.expired(now):
        parts = [f"EXPIRED {format_duration(now - c.expires)} ago"]
    else:
        parts = [describe_expiry(c, now)]
    if c.draining_since is not None:
        parts.append(f"draining since {clock(c.draining_since, now)}")
    o = c.active_override(now)
    if o is not None:
        parts.append(f"scaled to {o.replicas} by {o.by} until {clock(o.until, now)}")
    if r is not None:
        if deadline := deadline_text(c, r.expected_finish, now):
            parts.append(deadline)
        if c.replica_seconds > 0:
            parts.append(f"used {Cost(c.replica_seconds, r.prices)}")
    return "; ".join(parts)


def _finite(x: float | None) -> float | str | None:
    return "inf" if x is not None and x == float("inf") else x


def _rate(p: Progress | None) -> str:
    if p is None or p.rate_per_minute is None:
        return "-"
    text = f"{p.rate_per_minute:.1f}"
    return f"~{text} (estimate)" if p.rate_source == ESTIMATE else text


def _failed(r: StatusRow) -> str:
    p = r.progress
    if p is None or not r.task_events or p.failed_recent is None:
        return NO_EVENTS
    ratio = p.failure_ratio
    return f"{p.failed_recent} ({ratio:.0%})" if ratio is not None else "0"


def _eta(p: Progress | None, s: QueueStats | None) -> str:
    if p is None or s is None:
        return "-"
    if p.eta_seconds is None:
        if not (p.rate_per_minute == 0 and p.rate_source):
            return "-"
        # Nothing consumes it (0 ready replicas, nothing in flight): waiting, not stalled.
        return "not started" if s.ready_replicas == 0 and s.unacked == 0 else "stalled"
    return "-" if p.eta_seconds == 0 else format_duration(p.eta_seconds)


def _replicas(s: QueueStats | None) -> str:
    if s is None or s.replicas is None:
        return "-"
    return f"{s.ready_replicas or 0}/{s.replicas}"


def _num(v: int | None) -> str:
    return "-" if v is None else str(v)


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _duration(seconds: float | None) -> str:
    """An age, or "?" where the broker cannot date its messages."""
    return "?" if seconds is None else format_duration(seconds)
