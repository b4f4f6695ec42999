"""A claim as a coordination.k8s.io/v1 Lease, and back (pure, no I/O).

One Lease per batch, in batchctl's namespace, named `batchctl-claim-<queue>` (see
`lease_name`) and labelled so that

    kubectl get leases -l app.kubernetes.io/name=batchctl,batchctl.io/claim=true

lists them, with the holder in kubectl's HOLDER column. The spec says what kubectl and
other Lease readers understand:

- `holderIdentity`: the holder (absent while the batch is free);
- `acquireTime`: when the claim started (`since`);
- `renewTime`: its last renewal (claimed, extended, shortened, taken over);
- `leaseDurationSeconds`: the TTL from that renewal, rounded up to whole seconds, so
  `renewTime + leaseDurationSeconds` is the expiry;
- `leaseTransitions`: how many times the holder changed.

The record itself is generic: every field `Claim.to_fields()` gives is an annotation
`claims.batchctl.io/<field>` (holder, purpose, contact, since, expires, draining_since,
the override, expiry_noted, holder_verified, finish_by, replica_seconds, and any
field a later version adds), read
back with `Claim.from_fields`: the annotations are the truth, the spec their summary.
Beside them:

- `batchctl.io/queue`: the batch's queue name, exactly (a Lease name cannot hold every
  queue name);
- `batchctl.io/events`: the batch's newest claim events (at most `OUTBOX`), as a JSON
  list, written in the same update as the change they record: the store's history is
  these and the ring the leading sidecar mirrors them into (batchctl/claims/ring.py);
- `batchctl.io/changed-by`: who made the last change (the admission policy in
  docs/deploy.md pins it to the requesting user).

A released batch keeps its Lease, without holder or claim fields: the events stay, and
taking it again is an update with a resourceVersion precondition like any other change.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import secrets
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from batchctl.claims.history import AUTOSCALER, ClaimEvent, HistoryRead
from batchctl.claims.record import Claim

API_VERSION = "coordination.k8s.io/v1"
NAME_PREFIX = "batchctl-claim-"
LABELS = {
    "app.kubernetes.io/name": "batchctl",
    "app.kubernetes.io/component": "claim",
    "batchctl.io/claim": "true",
}
SELECTOR = "app.kubernetes.io/name=batchctl,batchctl.io/claim=true"
FIELD_PREFIX = "claims.batchctl.io/"
QUEUE = "batchctl.io/queue"
EVENTS = "batchctl.io/events"
CHANGED_BY = "batchctl.io/changed-by"
# The events a Lease carries: enough for the sidecar to mirror every change even after
# a long outage of its own, small enough for the 256 KiB annotation limit (an event is
# at most about 1 KiB: purpose and detail are capped at 200 characters each).
OUTBOX = 20
# The events that renew a claim (renewTime and leaseDurationSeconds start again).
RENEWING = frozenset({"claimed", "extended", "shortened", "taken_over"})
INT32_MAX = 2**31 - 1
# A Lease name is a DNS subdomain; we keep to one label's alphabet.
_NAME_OK = re.compile(r"[^a-z0-9-]")
_MAX_NAME = 253


def lease_name(queue: str) -> str:
    """`batchctl-claim-<queue>`: the queue in lower case, other characters as '-'; when
    that changed the name (upper case, `_ . : @`), or it is too long, a short hash of
    the exact queue name keeps two queues from sharing a Lease."""
    slug = _NAME_OK.sub("-", queue.lower()).strip("-")
    if slug == queue and len(NAME_PREFIX + slug) <= _MAX_NAME:
        return NAME_PREFIX + slug
    digest = hashlib.sha256(queue.encode()).hexdigest()[:10]
    room = _MAX_NAME - len(NAME_PREFIX) - len(digest) - 1
    return f"{NAME_PREFIX}{slug[:room].rstrip('-')}-{digest}".replace("--", "-")


def micro_time(t: float) -> str:
    """Unix seconds as a Kubernetes MicroTime (RFC 3339, microseconds, UTC)."""
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: Any) -> float | None:
    """A MicroTime or Time (RFC 3339) as unix seconds; None when it is not one."""
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _meta(lease: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = lease.get("metadata")
    return meta if isinstance(meta, dict) else {}


def annotations_of(lease: Mapping[str, Any]) -> Mapping[str, str]:
    found = _meta(lease).get("annotations")
    return found if isinstance(found, dict) else {}


def spec_of(lease: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = lease.get("spec")
    return spec if isinstance(spec, dict) else {}


def queue_of(lease: Mapping[str, Any]) -> str | None:
    """The queue a claim Lease is for (its annotation); None on a Lease of another kind."""
    q = annotations_of(lease).get(QUEUE)
    return q if isinstance(q, str) and q else None


def claim_of(lease: Mapping[str, Any] | None, queue: str) -> Claim | None:
    """The claim a Lease holds; None when there is none or the batch is free. A Lease
    that names another queue is not this batch's claim (None as well)."""
    if lease is None:
        return None
    notes = annotations_of(lease)
    if notes.get(QUEUE) != queue:
        return None
    fields = {k[len(FIELD_PREFIX) :]: v for k, v in notes.items() if k.startswith(FIELD_PREFIX)}
    return Claim.from_fields(queue, fields)


def new_event_id(at: float) -> str:
    """Milliseconds of the event's time and a random part: unique across writers, and
    in time order between events of different milliseconds."""
    ms = max(0, int(at * 1000)) if math.isfinite(at) else 0
    return f"{ms:013d}-{secrets.token_hex(4)}"


def outbox_of(lease: Mapping[str, Any]) -> HistoryRead:
    """The events a Lease carries, oldest first, and how many could not be read."""
    text = annotations_of(lease).get(EVENTS)
    if not text:
        return HistoryRead()
    try:
        entries = json.loads(text)
    except ValueError:
        entries = None
    # Not a list at all: one unreadable entry.
    return entries_read(entries) if isinstance(entries, list) else HistoryRead(skipped=1)


def entries_read(entries: Iterable[Any]) -> HistoryRead:
    """Events stored as `event_entry` dicts (the Lease's list, the ring's lines decoded),
    in their order; anything else is counted as unreadable."""
    out = HistoryRead()
    for entry in entries:
        event = (
            ClaimEvent.from_entry(entry.get("id", ""), entry) if isinstance(entry, dict) else None
        )
        if event is None:
            out.skipped += 1
        else:
            out.events.append(event)
    return out


def event_entry(e: ClaimEvent) -> dict[str, str]:
    """One event as the outbox and the ring store it: its fields and its id."""
    return {"id": e.id, **e.to_fields()}


def lease_body(
    queue: str,
    claim: Claim | None,
    event: ClaimEvent | None,
    current: Mapping[str, Any] | None,
    namespace: str,
    *,
    by: str = AUTOSCALER,
) -> dict[str, Any]:
    """The Lease after a change: `claim` (None: the batch is free) and `event` (with its
    id) added to the events it carries; `current` is the Lease as read (None: there is
    none yet), whose resourceVersion the update carries, so that a Lease changed in
    between is refused (409) and the change decided again. A change without an event
    (the autoscaler's usage count) keeps the events as they are; `by` names its writer
    (an event names its own)."""
    meta = dict(_meta(current)) if current is not None else {}
    old_spec = spec_of(current) if current is not None else {}
    kept = [event_entry(e) for e in outbox_of(current).events] if current is not None else []
    events = [*kept, event_entry(event)][-OUTBOX:] if event is not None else kept
    notes: dict[str, str] = {
        k: v
        for k, v in annotations_of(current or {}).items()
        if not k.startswith(FIELD_PREFIX) and k not in (QUEUE, EVENTS, CHANGED_BY)
    }
    notes[QUEUE] = queue
    notes[EVENTS] = json.dumps(events, separators=(",", ":"), ensure_ascii=False)
    notes[CHANGED_BY] = event.who if event is not None else by
    if claim is not None:
        notes.update({FIELD_PREFIX + k: v for k, v in claim.to_fields().items()})
    labels = {**(meta.get("labels") or {}), **LABELS}
    body: dict[str, Any] = {
        "apiVersion": API_VERSION,
        "kind": "Lease",
        "metadata": {
            "name": lease_name(queue),
            "namespace": namespace,
            "labels": labels,
            "annotations": notes,
        },
        "spec": _spec(claim, event, old_spec),
    }
    if current is not None and meta.get("resourceVersion"):
        body["metadata"]["resourceVersion"] = meta["resourceVersion"]
    return body


def _spec(claim: Claim | None, event: ClaimEvent | None, old: Mapping[str, Any]) -> dict[str, Any]:
    transitions = old.get("leaseTransitions")
    transitions = transitions if isinstance(transitions, int) and transitions >= 0 else 0
    if claim is None:
        return {"leaseTransitions": transitions} if transitions else {}
    if old.get("holderIdentity") not in (None, claim.holder):
        transitions += 1
    renewed = parse_time(old.get("renewTime"))
    if event is not None and event.kind in RENEWING:
        renewed = event.at
    elif renewed is None or old.get("holderIdentity") != claim.holder:
        renewed = claim.since  # e.g. a claim copied from another store: since its start
    ttl = max(1, min(INT32_MAX, math.ceil(claim.expires - renewed)))
    spec: dict[str, Any] = {
        "holderIdentity": claim.holder,
        "acquireTime": micro_time(claim.since),
        "renewTime": micro_time(renewed),
        "leaseDurationSeconds": ttl,
    }
    if transitions:
        spec["leaseTransitions"] = transitions
    return spec


def merge_events(reads: Iterable[HistoryRead]) -> HistoryRead:
    """Events from several places (Leases, the ring), each once (by id), oldest first
    (by time, then id); the unreadable ones counted."""
    out = HistoryRead()
    seen: dict[str, ClaimEvent] = {}
    for read in reads:
        out.skipped += read.skipped
        for e in read.events:
            seen.setdefault(e.id or f"{e.at}/{e.queue}/{e.kind}", e)
    out.events = sorted(seen.values(), key=lambda e: (e.at, e.id))
    return out


__all__ = [
    "CHANGED_BY",
    "EVENTS",
    "FIELD_PREFIX",
    "LABELS",
    "OUTBOX",
    "QUEUE",
    "SELECTOR",
    "annotations_of",
    "claim_of",
    "event_entry",
    "lease_body",
    "lease_name",
    "merge_events",
    "micro_time",
    "new_event_id",
    "outbox_of",
    "parse_time",
    "queue_of",
]
