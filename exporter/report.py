"""`batchctl status` as text and JSON: one row per configured batch (pure, no I/O).

The rows come from one snapshot: claims and queue numbers read in the same round trip.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from batchctl.claims import Claim, describe_expiry
from batchctl.config import Config
from batchctl.units import format_duration
from exporter.snapshot import QueueStats, Snapshot


@dataclass(frozen=True)
class StatusRow:
    queue: str
    deployment: str
    claim: Claim | None
    stats: QueueStats | None  # None: no snapshot (broker read failed)


def status_rows(
    cfg: Config, claims: Mapping[str, Claim | None], snap: Snapshot | None
) -> list[StatusRow]:
    """One row per configured batch; queue numbers only while the broker answered."""
    return [
        StatusRow(
            b.queue,
            b.deployment,
            claims.get(b.queue),
            snap.queue(b.queue) if snap is not None and snap.broker_up else None,
        )
        for b in cfg.batches
    ]


def status_json(
    rows: Sequence[StatusRow], snap: Snapshot | None, now: float, ages_known: bool
) -> dict[str, object]:
    def row(r: StatusRow) -> dict[str, object]:
        s = r.stats
        return {
            "queue": r.queue,
            "deployment": r.deployment,
            "claim": r.claim.to_json(now) if r.claim is not None else None,
            "waiting": s.waiting if s else None,
            "in_flight": s.unacked if s else None,
            "oldest_age_seconds": s.oldest_age_seconds if s and ages_known else None,
            "replicas": s.replicas if s else None,
            "ready_replicas": s.ready_replicas if s else None,
        }

    return {
        "taken_at": now,
        "broker_up": snap.broker_up if snap is not None else None,
        "broker_error": snap.broker_error if snap is not None else None,
        "batches": [row(r) for r in rows],
    }


_HEADER = ("QUEUE", "HOLDER", "PURPOSE", "CLAIM", "WAITING", "IN FLIGHT", "OLDEST", "REPLICAS")


def render_table(rows: Sequence[StatusRow], now: float, ages_known: bool) -> str:
    """One line per batch; claims always, queue numbers when the snapshot has them."""
    table: list[tuple[str, ...]] = [_HEADER]
    for r in rows:
        c, s = r.claim, r.stats
        expiry = ""
        if c is not None:
            expiry = ("EXPIRED, " if c.expired(now) else "") + describe_expiry(c, now)
        age = "-"
        if s is not None and ages_known:
            age = format_duration(s.oldest_age_seconds) if s.waiting else "-"
        table.append(
            (
                r.queue,
                c.holder if c else "-",
                _clip(c.purpose, 32) if c else "",
                expiry,
                _num(s.waiting if s else None),
                _num(s.unacked if s else None),
                age,
                _replicas(s),
            )
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(_HEADER))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in table]
    return "\n".join(line.rstrip() for line in lines)


def _replicas(s: QueueStats | None) -> str:
    if s is None or s.replicas is None:
        return "-"
    return f"{s.ready_replicas or 0}/{s.replicas}"


def _num(v: int | None) -> str:
    return "-" if v is None else str(v)


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"
