"""The busy map: which worker runs and holds which tasks (exporter/events/workload.py),
fed events shaped as Celery's receiver hands them over (pure)."""

from __future__ import annotations

from typing import Any

from batchctl.config import EventsConfig
from exporter.events.aggregate import EventAggregator
from exporter.events.model import EventsView
from exporter.events.workload import WorkerLoad

T0 = 1_000_000.0
POD = "batch1@celery-batch1-6d9f8c7b5-x2x4q"
OTHER_POD = "batch1@celery-batch1-6d9f8c7b5-k8mzp"


def make() -> EventAggregator:
    return EventAggregator(EventsConfig(enabled=True), {"batch1": "celery-batch1"})


def ev(kind: str, at: float = T0, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "local_received": at, "timestamp": at, **fields}


def beat(host: str, active: int, at: float = T0) -> dict[str, Any]:
    return ev("worker-heartbeat", at, hostname=host, active=active, freq=2.0)


def loads(agg: EventAggregator, now: float = T0 + 1) -> dict[str, tuple[int, int]]:
    v: EventsView = agg.view(now, up=True, since=T0, error=None)
    return {w.hostname: (w.active, w.reserved) for w in v.workers}


def feed(agg: EventAggregator, *events: dict[str, Any]) -> None:
    for e in events:
        agg.handle(e)


def test_a_worker_holds_what_it_received_and_runs_what_it_started() -> None:
    agg = make()
    feed(agg, beat(POD, 0), beat(OTHER_POD, 0))
    feed(agg, *(ev("task-received", uuid=u, name="t", hostname=POD) for u in "abc"))
    feed(agg, ev("task-started", uuid="a", hostname=POD))
    assert loads(agg) == {POD: (1, 2), OTHER_POD: (0, 0)}
    feed(agg, ev("task-succeeded", uuid="a", hostname=POD, runtime=1.0))
    feed(agg, ev("task-revoked", uuid="b", hostname=POD))
    assert loads(agg) == {POD: (0, 1), OTHER_POD: (0, 0)}


def test_a_redelivered_task_moves_to_its_new_worker() -> None:
    agg = make()
    feed(agg, beat(POD, 0), beat(OTHER_POD, 0))
    feed(agg, ev("task-received", uuid="a", name="t", hostname=POD))
    feed(agg, ev("task-received", uuid="a", name="t", hostname=OTHER_POD))
    assert loads(agg) == {POD: (0, 0), OTHER_POD: (0, 1)}


def test_a_worker_that_goes_offline_holds_nothing_any_more() -> None:
    agg = make()
    feed(agg, beat(POD, 0), ev("task-received", uuid="a", name="t", hostname=POD))
    feed(agg, ev("worker-offline", hostname=POD))
    assert loads(agg) == {}
    assert len(agg.held) == 0


def test_a_worker_that_expires_is_dropped_with_what_it_held() -> None:
    agg = make()
    feed(agg, beat(POD, 0), ev("task-received", uuid="a", name="t", hostname=POD))
    assert loads(agg, now=T0 + 60) == {}
    assert len(agg.held) == 0


def test_running_tasks_come_from_the_heartbeat_when_no_start_was_seen() -> None:
    """An exporter that starts while tasks run: the heartbeat's `active` counts them."""
    agg = make()
    feed(agg, beat(POD, 3))
    assert loads(agg) == {POD: (3, 0)}


def test_forgotten_tasks_are_not_held_for_ever() -> None:
    """The aggregator's LRU of tracked tasks bounds the held tasks too."""
    agg = EventAggregator(EventsConfig(enabled=True, max_tracked_tasks=100), {"batch1": "x"})
    feed(agg, beat(POD, 0))
    feed(agg, *(ev("task-received", uuid=f"u{i}", name="t", hostname=POD) for i in range(150)))
    assert loads(agg) == {POD: (0, 100)}
    assert len(agg.held) == 100


def test_the_busy_map_survives_the_snapshot_json() -> None:
    agg = make()
    feed(agg, beat(POD, 1), ev("task-received", uuid="a", name="t", hostname=POD))
    agg.learned(POD, ["batch1"])  # its answer to active_queues
    v = agg.view(T0 + 1, up=True, since=T0, error=None)
    back = EventsView.from_json(v.to_json())
    assert back.workers == (WorkerLoad(POD, "batch1", 1, 1),)


def test_a_worker_of_two_queues_or_not_asked_yet_is_under_unknown() -> None:
    """Its queue is its own answer, never its name: until it answers, and when it
    consumes two queues, the busy map says `unknown` (pods are matched by name alone)."""
    agg = make()
    feed(agg, beat(POD, 0), beat(OTHER_POD, 0))
    agg.learned(OTHER_POD, ["batch1", "batch2"])
    v = agg.view(T0 + 1, up=True, since=T0, error=None)
    assert {w.hostname: w.queue for w in v.workers} == {POD: "unknown", OTHER_POD: "unknown"}
