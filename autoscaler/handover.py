"""What a leader hands to the next one: its last change per batch, and when (pure).

The policy remembers, per batch, what it last asked for and when it last stepped up or
down; without those a new leader would take the previous leader's last step for a
manual change (and hold off for manual_override_seconds), or step again at once. The
leader records each change here *before* writing it (an intent: from `previous` to
`desired` at `at`), so that a leader that dies between the two leaves a record the next
one can read either way: replicas at `desired` (the write landed) or at `previous` (it
did not) are both ours. The record is a small JSON document in the Lease's annotation
(autoscaler/leader.py); unknown or broken records are ignored, never fatal.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace

from autoscaler.policy import BatchState, PolicyState

VERSION = 1


@dataclass(frozen=True)
class Change:
    desired: int  # what we asked for
    previous: int  # what it was before
    at: float  # unix seconds
    up_at: float | None = None  # our last step up, unix seconds
    down_at: float | None = None  # our last step down


Record = Mapping[str, Change]


def encode(record: Record) -> str:
    batches = {q: {k: v for k, v in vars(c).items() if v is not None} for q, c in record.items()}
    return json.dumps({"v": VERSION, "batches": batches}, sort_keys=True, separators=(",", ":"))


def decode(text: str | None) -> dict[str, Change]:
    """The record in `text`; {} for none, another version or anything unreadable."""
    if not text:
        return {}
    try:
        doc = json.loads(text)
        if doc.get("v") != VERSION:
            return {}
        out = {}
        for queue, raw in doc["batches"].items():
            out[str(queue)] = Change(
                desired=int(raw["desired"]),
                previous=int(raw["previous"]),
                at=float(raw["at"]),
                up_at=None if raw.get("up_at") is None else float(raw["up_at"]),
                down_at=None if raw.get("down_at") is None else float(raw["down_at"]),
            )
        return out
    except (ValueError, TypeError, KeyError, AttributeError):
        return {}


def with_change(
    record: Record, queue: str, previous: int, desired: int, at: float
) -> dict[str, Change]:
    """`record` plus the intent to go from `previous` to `desired` replicas at `at`."""
    old = record.get(queue)
    up_at = at if desired > previous else (old.up_at if old else None)
    down_at = at if desired < previous else (old.down_at if old else None)
    return {**record, queue: Change(desired, previous, at, up_at, down_at)}


def seed(
    record: Record, replicas: Mapping[str, int], state: PolicyState | None = None
) -> PolicyState:
    """The policy state a new leader starts from: the record's facts for every batch in
    it, taking the current replica count as ours when it is either end of the last
    change (so neither end reads as a manual override)."""
    batches = dict(state.batches) if state is not None else {}
    for queue, change in record.items():
        now = replicas.get(queue)
        ours = now if now in (change.desired, change.previous) else change.desired
        base = batches.get(queue) or BatchState()
        batches[queue] = replace(
            base,
            last_desired=ours,
            last_seen_replicas=ours,
            last_up_at=change.up_at,
            last_down_at=change.down_at,
            override_until=None,
        )
    return PolicyState(batches)
