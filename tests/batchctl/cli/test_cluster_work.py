"""The work left as a kubeconfig-only command reads it: from the exporter's snapshot,
and unknown (StoreUnavailable, exit 3) whenever the snapshot cannot count the queue."""

from __future__ import annotations

import pytest
from kubernetes import client

from batchctl.claims.errors import StoreUnavailable
from batchctl.cli.cluster import Session
from batchctl.config import parse_config
from exporter.snapshot import QueueStats, Snapshot

CFG = parse_config({"kubernetes": {"namespace": "jobs"}}, env={})
BATCH0 = QueueStats("batch0", 5, {}, 2, None, 0, True)


def snap(**kw: object) -> Snapshot:
    return Snapshot(taken_at=1.0, duration_seconds=0.1, kubernetes_up=True, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("snapshot", "says"),
    [
        (snap(broker_up=False, broker_error="timed out"), "cannot read the broker"),
        (snap(broker_up=True, queues_unpublished=("batch1",)), "not published the figures"),
        (snap(broker_up=True), "no reading yet"),
    ],
)
def test_a_queue_the_snapshot_cannot_count_is_unknown(snapshot: Snapshot, says: str) -> None:
    session = Session(CFG, client.ApiClient())  # the snapshot is given: no request
    with pytest.raises(StoreUnavailable) as e:
        session.work("batch1", snapshot)
    assert says in str(e.value) and "batch1" in str(e.value)


def test_a_counted_queue_is_its_work() -> None:
    session = Session(CFG, client.ApiClient())
    work = session.work("batch0", snap(broker_up=True, queues=(BATCH0,)))
    assert (work.waiting, work.in_flight) == (5, 2)
