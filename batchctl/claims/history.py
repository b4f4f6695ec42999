"""Claim history: every change of a claim as one event (pure, no I/O).

The store appends each event, in the same MULTI as the change itself, to one capped
Redis stream, `batchctl:history` (after the broker's global_keyprefix, capped at about
claims.history_max_events with XADD MAXLEN ~). `batchctl history` reads it, and the
exporter's /status page shows the last few per batch.

Kinds (`who` names the user, or "autoscaler"):

- claimed: a free batch claimed, or its holder claiming it again after it expired;
- extended / shortened: the holder renews and the expiry moves later / earlier;
- taken_over: an expired claim taken by someone else; names the previous holder;
- released: the holder gives it back with nothing left to do;
- draining: released with work left and `--drain` (no growth, finish, end by itself);
- drained: the autoscaler ended a draining claim, work done and at min_replicas;
- forced: someone else's claim released or scaled, or a release that leaves work;
- expired: the autoscaler saw a claim past its expiry (recorded once);
- scaled: the holder set the replicas by hand for a while (`batchctl scale`);
- migrated: a live claim copied from another store (`batchctl claims migrate`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from batchctl.claims.record import MAX_TIME

HISTORY_KEY = "batchctl:history"

KINDS = (
    "claimed",
    "extended",
    "shortened",
    "taken_over",
    "released",
    "draining",
    "drained",
    "forced",
    "expired",
    "scaled",
    "migrated",
)

# `who` of the events the autoscaler records.
AUTOSCALER = "autoscaler"


def history_key(prefix: str = "") -> str:
    return prefix + HISTORY_KEY


@dataclass(frozen=True)
class ClaimEvent:
    kind: str  # one of KINDS
    queue: str
    at: float  # unix seconds
    who: str  # who did it: a user name, or "autoscaler"
    holder: str  # the claim's holder (the new one for claimed/taken_over)
    purpose: str = ""
    detail: str = ""  # one sentence: previous holder, work left, replicas and until...
    id: str = ""  # the stream entry id once stored (milliseconds-sequence)
    # Whether the cluster verified `who` (the kubernetes store: SelfSubjectReview);
    # False: a name from --holder/$USER on a cluster without it; None: not checked.
    verified: bool | None = None
    # What the claim this event ends (released, forced, drained, taken_over, expired)
    # had used, in replica-seconds; None for events that end no claim.
    replica_seconds: float | None = None

    def to_fields(self) -> dict[str, str]:
        out = {
            "kind": self.kind,
            "queue": self.queue,
            "at": f"{self.at:.3f}",
            "who": self.who,
            "holder": self.holder,
            "purpose": self.purpose,
            "detail": self.detail,
        }
        if self.verified is not None:
            out["verified"] = "1" if self.verified else "0"
        if self.replica_seconds is not None:
            out["replica_seconds"] = f"{self.replica_seconds:.3f}"
        return out

    @property
    def who_shown(self) -> str:
        """`who` as outputs print it: marked when the cluster could not verify it."""
        return f"{self.who} (unverified)" if self.verified is False else self.who

    @classmethod
    def from_entry(cls, entry_id: Any, fields: Mapping[Any, Any] | None) -> ClaimEvent | None:
        """One stream entry as read (bytes or str); None when it is not an event of ours:
        no kind or queue, or a time that is not a number, not finite or out of range.
        Bytes that are not UTF-8 are decoded with replacement characters."""
        if not isinstance(fields, Mapping):
            return None
        f = {_text(k): _text(v) for k, v in fields.items()}
        try:
            at = float(f.get("at") or "")
        except ValueError:
            return None
        if not (math.isfinite(at) and 0.0 <= at < MAX_TIME):
            return None
        if not f.get("kind") or not f.get("queue"):
            return None
        return cls(
            f["kind"],
            f["queue"],
            at,
            f.get("who", ""),
            f.get("holder", ""),
            f.get("purpose", ""),
            f.get("detail", ""),
            _text(entry_id),
            verified={"1": True, "0": False}.get(f.get("verified", "")),
            replica_seconds=_seconds(f.get("replica_seconds")),
        )

    def to_json(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class HistoryRead:
    """Events read from the stream, and how many entries could not be read as events."""

    events: list[ClaimEvent] = field(default_factory=list)
    skipped: int = 0


def parse_entries(entries: Iterable[Any]) -> HistoryRead:
    """Stream entries (id, fields) as XRANGE/XREVRANGE return them, in their order;
    entries that are not events of ours (or not even pairs) are skipped and counted."""
    out = HistoryRead()
    for entry in entries:
        try:
            entry_id, fields = entry
        except (TypeError, ValueError):
            out.skipped += 1
            continue
        event = ClaimEvent.from_entry(entry_id, fields)
        if event is None:
            out.skipped += 1
        else:
            out.events.append(event)
    return out


def select(read: HistoryRead, queue: str | None, since: float | None) -> HistoryRead:
    """`read` with only the events of `queue` (None: every batch) from `since` on."""
    read.events = [
        e
        for e in read.events
        if (queue is None or e.queue == queue) and (since is None or e.at >= since)
    ]
    return read


def newest(read: HistoryRead, count: int) -> HistoryRead:
    """`read` (oldest first) as its newest `count` events, newest first."""
    read.events = list(reversed(read.events))[:count]
    return read


def last_per_batch(events: list[ClaimEvent], per_batch: int) -> dict[str, list[ClaimEvent]]:
    """The newest `per_batch` events of each batch, oldest first, from events in any order."""
    out: dict[str, list[ClaimEvent]] = {}
    for e in sorted(events, key=lambda e: e.at, reverse=True):
        got = out.setdefault(e.queue, [])
        if len(got) < per_batch:
            got.append(e)
    return {q: list(reversed(es)) for q, es in out.items()}


def _seconds(value: str | None) -> float | None:
    """A stored replica-seconds figure; None when absent or garbage."""
    try:
        n = float(value) if value else None
    except ValueError:
        return None
    return n if n is not None and math.isfinite(n) and 0.0 <= n < MAX_TIME else None


def _text(value: Any) -> str:
    # A hand-written entry may hold any bytes: never fail a page or a command over it.
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
