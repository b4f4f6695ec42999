"""The autoscaler's latest decisions as others read them (pure, no I/O).

One observer per pod means the exporter does not know what the autoscaler decided. The
sidecar serves its latest decisions at /api/v1/decisions (autoscaler/server.py), and the
leader also keeps a compact copy in its Lease (`batchctl.io/autoscaler-decisions`,
written at every renewal), so a standby's endpoint serves the leader's. The exporter's
status page reads the sidecar beside it (`exporter.autoscaler_url`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from batchctl import jsonout

# Where the decisions come from: this replica decided them, or it is a standby serving
# the leader's copy from the Lease; none when neither is known yet.
SELF, LEASE, NONE = "self", "lease", "none"
# The detail sentence is cut to this in the Lease copy (annotations are small).
COMPACT_DETAIL = 160


class Decided(Protocol):
    """A decision as the policy makes it (autoscaler.policy.Decision)."""

    @property
    def queue(self) -> str: ...
    @property
    def current(self) -> int: ...
    @property
    def desired(self) -> int: ...
    @property
    def action(self) -> object: ...
    @property
    def reason(self) -> object: ...
    @property
    def detail(self) -> str: ...


@dataclass(frozen=True)
class DecisionRecord:
    """One batch's decision, in the one JSON shape every reader gets (/api/v1/decisions,
    `batchctl autoscaler --once -o json`): `current` and `desired` replicas."""

    queue: str
    current: int  # replicas when it decided
    desired: int  # replicas it decided on
    action: str  # up, down, hold, none (batchctl.reasons.Action)
    reason: str  # batchctl.reasons.Reason
    detail: str = ""

    @classmethod
    def of(cls, d: Decided) -> DecisionRecord:
        return cls(d.queue, d.current, d.desired, str(d.action), str(d.reason), d.detail)

    def to_json(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class Decisions:
    source: str  # SELF, LEASE or NONE
    at: float | None = None  # when they were decided (unix seconds)
    leader: str | None = None  # who decided (the Lease holder), when known
    decisions: tuple[DecisionRecord, ...] = ()
    # The backend that applied them (kubernetes, local) or pretended to (dry-run).
    backend: str | None = None

    def by_queue(self) -> dict[str, DecisionRecord]:
        return {d.queue: d for d in self.decisions}

    def to_json(self) -> dict[str, object]:
        return {
            "source": self.source,
            "at": self.at,
            "leader": self.leader,
            "decisions": [d.to_json() for d in self.decisions],
            "backend": self.backend,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Decisions:
        """Raises KeyError, TypeError or ValueError for a document that is not one."""
        at = data.get("at")
        leader = data.get("leader")
        backend = data.get("backend")
        return cls(
            backend=None if backend is None else str(backend),
            source=str(data["source"]),
            at=None if at is None else float(at),
            leader=None if leader is None else str(leader),
            decisions=tuple(_record(d) for d in data.get("decisions") or ()),
        )


def _record(d: Mapping[str, Any]) -> DecisionRecord:
    return DecisionRecord(
        queue=str(d["queue"]),
        current=int(d["current"]),
        desired=int(d["desired"]),
        action=str(d["action"]),
        reason=str(d["reason"]),
        detail=str(d.get("detail", "")),
    )


def encode_compact(
    at: float, leader: str | None, records: Sequence[DecisionRecord], backend: str | None = None
) -> str:
    """The Lease annotation: short keys, details cut to COMPACT_DETAIL characters."""
    rows = [
        [d.queue, d.current, d.desired, d.action, d.reason, d.detail[:COMPACT_DETAIL]]
        for d in records
    ]
    doc = {"v": 1, "at": round(at, 3), "by": leader, "d": rows, "b": backend}
    return jsonout.dumps(doc, separators=(",", ":"))


def decode_compact(text: str | None) -> Decisions | None:
    """The leader's copy from its Lease; None when absent, of another version or broken."""
    if not text:
        return None
    try:
        doc = json.loads(text)
        if doc.get("v") != 1:
            return None
        records = tuple(
            DecisionRecord(str(q), int(c), int(d), str(a), str(r), str(detail))
            for q, c, d, a, r, detail in doc["d"]
        )
        by, backend = doc.get("by"), doc.get("b")
        return Decisions(
            LEASE,
            float(doc["at"]),
            None if by is None else str(by),
            records,
            None if backend is None else str(backend),
        )
    except (ValueError, TypeError, KeyError, AttributeError):
        return None
