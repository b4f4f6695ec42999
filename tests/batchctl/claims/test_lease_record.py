"""A claim as a Lease and back (batchctl/claims/lease_record.py): pure, no server."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import Any

import pytest

from batchctl.claims import Claim, ClaimEvent, Override
from batchctl.claims.history import HistoryRead
from batchctl.claims.lease_record import (
    EVENTS,
    FIELD_PREFIX,
    OUTBOX,
    QUEUE,
    claim_of,
    lease_body,
    lease_name,
    merge_events,
    outbox_of,
    parse_time,
)
from tests.support.claims import HOUR, NOW, claim

NS = "court-listener"
# A Lease's name: an RFC 1123 subdomain of at most 253 characters.
SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def event(kind: str, c: Claim, at: float, who: str | None = None, n: int = 0) -> ClaimEvent:
    return ClaimEvent(kind, c.queue, at, who or c.holder, c.holder, c.purpose, "", f"id-{n:04d}")


def stored(body: dict[str, Any]) -> dict[str, Any]:
    """The body as the API server keeps it (a resourceVersion of its own)."""
    out = json.loads(json.dumps(body))
    out["metadata"]["resourceVersion"] = "1001"
    return out


@pytest.mark.parametrize(
    ("queue", "name"),
    [
        ("batch1", "batchctl-claim-batch1"),
        ("reports-nightly", "batchctl-claim-reports-nightly"),
    ],
)
def test_a_queue_a_lease_name_can_hold_is_its_name(queue: str, name: str) -> None:
    assert lease_name(queue) == name


@pytest.mark.parametrize(
    "queues",
    [("batch.1", "batch-1"), ("Batch1", "batch1"), ("a:b", "a@b", "a_b"), ("x" * 200, "x" * 199)],
)
def test_other_queue_names_get_distinct_valid_names(queues: tuple[str, ...]) -> None:
    names = [lease_name(q) for q in queues]
    assert len(set(names)) == len(names)
    for n in names:
        assert len(n) <= 253 and SUBDOMAIN.match(n), n


def test_every_field_of_the_record_round_trips() -> None:
    c = claim(
        draining_since=NOW - 60,
        override=Override(3, NOW + 600, "alice", "catch up", NOW - 30),
        expiry_noted=True,
        holder_verified=True,
        finish_by=NOW + 2 * HOUR,
        replica_seconds=5400.0,
    )
    body = lease_body("batch1", c, event("scaled", c, NOW), None, NS)
    notes = body["metadata"]["annotations"]
    # Generic: every field the record gives, under one prefix.
    assert {FIELD_PREFIX + k: v for k, v in c.to_fields().items()}.items() <= notes.items()
    assert claim_of(stored(body), "batch1") == c


def test_a_field_a_later_version_adds_flows_through(monkeypatch: pytest.MonkeyPatch) -> None:
    """A record with a field this module never names (issue 23's `finish_by`, say): written
    as an annotation and handed back to Claim.from_fields, with no change here."""
    original = Claim.to_fields
    monkeypatch.setattr(Claim, "to_fields", lambda self: original(self) | {"finish_by": "123"})
    seen: list[dict[str, str]] = []
    decode = Claim.from_fields

    def spy(queue: str, fields: Any) -> Claim | None:
        seen.append(dict(fields))
        return decode.__func__(Claim, queue, fields)  # type: ignore[attr-defined]

    c = claim()
    body = lease_body("batch1", c, event("claimed", c, NOW), None, NS)
    assert body["metadata"]["annotations"][FIELD_PREFIX + "finish_by"] == "123"
    monkeypatch.setattr(Claim, "from_fields", staticmethod(spy))
    claim_of(stored(body), "batch1")
    assert seen[-1]["finish_by"] == "123"


def test_the_spec_says_it_as_kubectl_reads_a_lease() -> None:
    c = claim(since=NOW, expires=NOW + 8 * HOUR)
    body = lease_body("batch1", c, event("claimed", c, NOW), None, NS)
    spec = body["spec"]
    assert spec["holderIdentity"] == "alice"
    assert spec["leaseDurationSeconds"] == 8 * 3600
    assert parse_time(spec["acquireTime"]) == pytest.approx(NOW)
    assert parse_time(spec["renewTime"]) == pytest.approx(NOW)
    assert body["metadata"]["labels"]["batchctl.io/claim"] == "true"
    assert body["metadata"]["annotations"][QUEUE] == "batch1"
    assert "resourceVersion" not in body["metadata"]  # a create
    # A renewal an hour later: renewTime moves, the duration is the new TTL.
    renewed = replace(c, expires=NOW + 3 * HOUR)
    again = lease_body("batch1", renewed, event("extended", renewed, NOW + HOUR), stored(body), NS)
    assert parse_time(again["spec"]["renewTime"]) == pytest.approx(NOW + HOUR)
    assert again["spec"]["leaseDurationSeconds"] == 2 * 3600
    assert again["metadata"]["resourceVersion"] == "1001"  # an update, with its precondition
    # A manual scale is no renewal: renewTime and duration stay.
    scaled = replace(renewed, override=Override(2, NOW + 2 * HOUR, "alice"))
    third = lease_body("batch1", scaled, event("scaled", scaled, NOW + 2 * HOUR),
                       stored(again), NS)  # fmt: skip
    assert third["spec"]["renewTime"] == again["spec"]["renewTime"]
    # A takeover counts a transition.
    bob = claim("bob", since=NOW + 9 * HOUR, expires=NOW + 10 * HOUR)
    taken = lease_body("batch1", bob, event("taken_over", bob, NOW + 9 * HOUR), stored(third), NS)
    assert (taken["spec"]["holderIdentity"], taken["spec"]["leaseTransitions"]) == ("bob", 1)


def test_a_released_batch_keeps_its_lease_and_its_events() -> None:
    c = claim()
    first = stored(lease_body("batch1", c, event("claimed", c, NOW, n=1), None, NS))
    freed = lease_body("batch1", None, event("released", c, NOW + 60, n=2), first, NS)
    assert freed["spec"] == {}
    assert not [k for k in freed["metadata"]["annotations"] if k.startswith(FIELD_PREFIX)]
    assert claim_of(stored(freed), "batch1") is None
    assert [e.kind for e in outbox_of(stored(freed)).events] == ["claimed", "released"]
    assert freed["metadata"]["annotations"]["batchctl.io/changed-by"] == "alice"


def test_a_change_without_an_event_keeps_the_events_and_the_renewal() -> None:
    """The autoscaler's usage count: the record changes, nothing is added to the events,
    the spec's renewal stays, and the writer is named."""
    c = claim(since=NOW, expires=NOW + 8 * HOUR)
    first = stored(lease_body("batch1", c, event("claimed", c, NOW, n=1), None, NS))
    used = replace(c, replica_seconds=600.0)
    body = lease_body("batch1", used, None, first, NS, by="autoscaler")
    assert claim_of(stored(body), "batch1") == used
    assert body["metadata"]["annotations"][EVENTS] == first["metadata"]["annotations"][EVENTS]
    assert body["metadata"]["annotations"]["batchctl.io/changed-by"] == "autoscaler"
    assert body["spec"] == first["spec"]
    assert body["metadata"]["resourceVersion"] == "1001"  # an update, with its precondition


def test_the_lease_carries_the_newest_events_only() -> None:
    c = claim()
    lease = None
    for n in range(OUTBOX + 5):
        lease = stored(lease_body("batch1", c, event("extended", c, NOW + n, n=n), lease, NS))
    assert lease is not None
    events = outbox_of(lease).events
    assert len(events) == OUTBOX
    assert events[0].id == f"id-{5:04d}" and events[-1].id == f"id-{OUTBOX + 4:04d}"


def test_unreadable_events_are_counted_not_fatal() -> None:
    c = claim()
    lease = stored(lease_body("batch1", c, event("claimed", c, NOW), None, NS))
    good = json.loads(lease["metadata"]["annotations"][EVENTS])
    lease["metadata"]["annotations"][EVENTS] = json.dumps([*good, {"kind": "x"}, 7])
    read = outbox_of(lease)
    assert ([e.kind for e in read.events], read.skipped) == (["claimed"], 2)
    lease["metadata"]["annotations"][EVENTS] = "{not json"
    assert outbox_of(lease).skipped == 1


def test_a_lease_of_another_queue_is_not_this_batchs_claim() -> None:
    c = claim()
    lease = stored(lease_body("batch1", c, event("claimed", c, NOW), None, NS))
    assert claim_of(lease, "batch2") is None


def test_merged_events_are_each_once_in_time_order() -> None:
    c = claim()
    a, b, d = (event("claimed", c, NOW + i, n=i) for i in (2, 1, 3))
    read = merge_events([HistoryRead([a, b], 1), HistoryRead([b, d], 2)])
    assert [e.id for e in read.events] == ["id-0001", "id-0002", "id-0003"]
    assert read.skipped == 3
