"""The events aggregation, fed events shaped as Celery's receiver hands them over (pure).

What real workers send is proven in tests/exporter/events/test_celery.py; here every rule
of exporter/events/aggregate.py on its own: queue attribution, counts and run times,
active tasks healed by heartbeats, workers that expire, the caps that bound memory, and
events that are broken or hostile.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from batchctl.config import EventsConfig
from batchctl.metrics import RUNTIME_BUCKETS, TASK_STATES
from exporter.events.aggregate import MAX_LABEL, EventAggregator
from exporter.events.model import OTHER, UNKNOWN, EventsView
from tests.support.properties import examples

BATCHES = {"batch0": "celery-batch0", "batch1": "celery-batch1", "batch10": "celery-batch10"}
T0 = 1_000_000.0


def make(**cfg: Any) -> EventAggregator:
    return EventAggregator(EventsConfig(enabled=True, **cfg), BATCHES)


def ev(kind: str, at: float = T0, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "local_received": at, "timestamp": at, **fields}


def task_run(
    uuid: str,
    host: str = "batch1@pod",
    name: str = "app.work",
    at: float = T0,
    runtime: float = 0.5,
    end: str = "task-succeeded",
) -> list[dict[str, Any]]:
    """A task's life as a worker reports it: received, started, then its end."""
    extra = {"runtime": runtime} if end == "task-succeeded" else {}
    return [
        ev("task-received", at, uuid=uuid, name=name, hostname=host),
        ev("task-started", at, uuid=uuid, hostname=host),
        ev(end, at + runtime, uuid=uuid, hostname=host, **extra),
    ]


def feed(agg: EventAggregator, events: list[dict[str, Any]]) -> None:
    for e in events:
        agg.handle(e)


def teach(agg: EventAggregator, host: str, *queues: str, at: float = T0) -> None:
    """The worker comes online and answers `active_queues` with `queues`."""
    agg.handle(ev("worker-online", at, hostname=host, freq=2.0, active=0))
    agg.learned(host, list(queues))


def view(agg: EventAggregator, now: float = T0 + 1) -> EventsView:
    return agg.view(now, up=True, since=T0, error=None)


def counts(v: EventsView) -> dict[tuple[str, str, str], int]:
    return {(t.queue, t.task, s): n for t in v.tasks for s, n in t.states.items()}


def test_every_state_is_counted_per_queue_and_task() -> None:
    agg = make()
    teach(agg, "batch0@pod-1", "batch0")
    feed(agg, [ev("task-sent", uuid="a", name="app.work", queue="batch0")])
    feed(agg, task_run("a", host="batch0@pod-1", runtime=0.2))
    feed(agg, task_run("b", host="batch0@pod-1", end="task-failed"))
    feed(agg, task_run("c", host="batch0@pod-1", end="task-retried"))
    feed(agg, task_run("d", host="batch0@pod-1", end="task-rejected"))
    feed(agg, [ev("task-revoked", uuid="e", hostname="batch0@pod-1")])
    c = counts(view(agg))
    assert c == {
        ("batch0", "app.work", "sent"): 1,
        ("batch0", "app.work", "received"): 4,
        ("batch0", "app.work", "started"): 4,
        ("batch0", "app.work", "succeeded"): 1,
        ("batch0", "app.work", "failed"): 1,
        ("batch0", "app.work", "retried"): 1,
        ("batch0", "app.work", "rejected"): 1,
        # A task revoked before it was received: its name is not known.
        ("batch0", UNKNOWN, "revoked"): 1,
    }
    q = view(agg).queue("batch0")
    assert q is not None and (q.succeeded, q.failed, q.completed) == (1, 1, 2)
    assert q.task_events and q.active == 0


def test_run_times_fill_the_histogram_by_le() -> None:
    agg = make()
    runtimes = [0.0, 0.01, 0.011, 2.5, 3599.0, 3600.0, 7200.0]
    for i, r in enumerate(runtimes):
        feed(agg, task_run(f"t{i}", runtime=r))
    (stats,) = view(agg).tasks
    assert stats.runtime_count == len(runtimes)
    assert math.isclose(stats.runtime_sum, sum(runtimes))
    cumulative = dict(stats.cumulative_buckets())
    # Prometheus buckets are "less than or equal": 0.01 is in the 0.01 bucket.
    assert cumulative[0.01] == 2 and cumulative[0.025] == 3 and cumulative[2.5] == 4
    assert cumulative[3600.0] == 6 and cumulative[math.inf] == 7
    assert len(cumulative) == len(RUNTIME_BUCKETS) + 1


def test_the_queue_comes_from_task_sent_then_the_one_queue_its_worker_consumes() -> None:
    agg = make(max_queues=5)
    # 1. The producer's task-sent names the queue, whatever the worker consumes.
    teach(agg, "celery@laptop", "batch1", "batch0")
    feed(agg, [ev("task-sent", uuid="s", name="app.a", queue="batch0")])
    feed(agg, task_run("s", host="celery@laptop", name="app.a"))
    # 2. A worker that consumes exactly one queue, by its own answer: that queue.
    teach(agg, "celery@celery-storage-6d9f8c7b5-x2x4q", "batch1")
    feed(agg, task_run("p", host="celery@celery-storage-6d9f8c7b5-x2x4q", name="app.c"))
    # A name is no answer: batch1@... consumes `search`, so its tasks are search's.
    teach(agg, "batch1@look-alike", "search")
    feed(agg, task_run("n", host="batch1@look-alike", name="app.b"))
    # 3. Two queues and no task-sent: unknown, not a guess; nor from what it ran before.
    feed(agg, task_run("later", host="celery@laptop", name="app.e"))
    # A worker that has not answered (yet, or ever): unknown.
    feed(agg, task_run("u", host="celery@celery-batch1-6d9f8c7b5-abcde", name="app.f"))
    queues = {(t.task, t.queue) for t in view(agg).tasks}
    assert queues == {
        ("app.a", "batch0"),
        ("app.c", "batch1"),
        ("app.b", "search"),
        ("app.e", UNKNOWN),
        ("app.f", UNKNOWN),
    }


def test_workers_count_under_every_queue_they_consume_or_unknown() -> None:
    agg = make()
    teach(agg, "data-manager-search@pod", "search")
    teach(agg, "celery@data-manager-storage-7d9f8c7b5-x2x4q", "storage")
    teach(agg, "two@pod", "batch1", "batch0")
    agg.handle(ev("worker-online", T0, hostname="silent@pod", freq=2.0, active=2))
    v = view(agg)
    workers = {q.queue: q.workers for q in v.queues if q.workers}
    assert workers == {"search": 1, "storage": 1, "batch0": 1, "batch1": 1, UNKNOWN: 1}
    # The silent worker's running tasks are unknown's; nobody runs batch0's or batch1's.
    active = {q.queue: q.active for q in v.queues if q.active}
    assert active == {UNKNOWN: 2}


def test_workers_are_asked_when_they_appear_again_when_silent_and_on_refresh() -> None:
    agg = make()
    assert agg.due(T0, 300) == []
    agg.handle(ev("worker-online", T0, hostname="a@x", freq=2.0, active=0))
    assert agg.new_worker.is_set()
    assert agg.due(T0, 300) == ["a@x"] and not agg.new_worker.is_set()
    agg.asked(["a@x"], T0)
    assert agg.due(T0 + 0.9, 300) == []
    # No answer (its pidbox may not be consuming yet): asked again after 1 s, 2 s, 4 s...
    for t in range(2, 40, 2):
        agg.handle(ev("worker-heartbeat", T0 + t, hostname="a@x", freq=2.0, active=0))
    assert agg.due(T0 + 1, 300) == ["a@x"]
    agg.asked(["a@x"], T0 + 1)
    assert agg.due(T0 + 2.9, 300) == [] and agg.due(T0 + 3, 300) == ["a@x"]
    agg.asked(["a@x"], T0 + 30)
    agg.learned("a@x", ["batch1"])
    # Answered: asked again every refresh, and only while alive.
    assert agg.due(T0 + 38, 300) == []
    agg.handle(ev("worker-heartbeat", T0 + 330, hostname="a@x", freq=2.0, active=0))
    assert agg.due(T0 + 331, 300) == ["a@x"]
    assert agg.due(T0 + 400, 300) == []  # gone: not asked
    agg.learned("nobody@x", ["batch1"])  # an answer from a worker we do not track
    assert agg.tracked()[1] <= 1


def test_queues_that_are_not_configured_are_capped() -> None:
    agg = make(max_queues=2)
    for i, queue in enumerate(["reports", "emails", "thumbnails", "batch1"]):
        feed(agg, [ev("task-sent", uuid=f"u{i}", name="app.x", queue=queue)])
    seen = {t.queue for t in view(agg).tasks}
    # Two other queues get series, the third is "other"; configured batches always count.
    assert seen == {"reports", "emails", OTHER, "batch1"}


def test_task_names_are_capped_and_label_values_cut() -> None:
    agg = make(max_task_names=2)
    for i, name in enumerate(["a", "b", "c", "d", "a"]):
        feed(agg, task_run(f"t{i}", name=name))
    names = Counter(t.task for t in view(agg).tasks)
    assert set(names) == {"a", "b", OTHER}
    stats = {t.task: t.states["succeeded"] for t in view(agg).tasks}
    assert stats == {"a": 2, "b": 1, OTHER: 2}

    agg = make()
    feed(agg, task_run("long", name="x" * 10_000, host="batch1@" + "h" * 10_000))
    (stats_long,) = view(agg).tasks
    assert len(stats_long.task) == MAX_LABEL


def test_memory_is_bounded_by_the_task_lru() -> None:
    agg = make(max_tracked_tasks=100)
    teach(agg, "batch1@pod", "batch1")
    for i in range(1_000):
        feed(agg, [ev("task-received", uuid=f"t{i}", name="app.x", hostname="batch1@pod")])
    tasks, workers = agg.tracked()
    assert tasks == 100 and workers == 1 and agg.evicted == 900
    # Forgotten tasks are still counted when they finish, under their worker's queue.
    feed(agg, [ev("task-succeeded", uuid="t0", runtime=1.0, hostname="batch1@pod")])
    assert counts(view(agg))[("batch1", UNKNOWN, "succeeded")] == 1
    assert counts(view(agg))[("batch1", "app.x", "received")] == 1_000


def test_active_tasks_follow_started_and_finished() -> None:
    agg = make()
    teach(agg, "batch1@pod", "batch1")
    for uuid in ("a", "b", "c"):
        feed(agg, [ev("task-received", uuid=uuid, name="app.x", hostname="batch1@pod")])
        feed(agg, [ev("task-started", uuid=uuid, hostname="batch1@pod")])
    assert _active(agg, "batch1") == 3
    feed(agg, [ev("task-succeeded", T0 + 1, uuid="a", runtime=1.0, hostname="batch1@pod")])
    feed(agg, [ev("task-failed", T0 + 1, uuid="b", hostname="batch1@pod")])
    assert _active(agg, "batch1") == 1
    # A retried task is not running any more (its retry comes back as a new run).
    feed(agg, [ev("task-retried", T0 + 1, uuid="c", hostname="batch1@pod")])
    assert _active(agg, "batch1") == 0


def test_lost_finish_events_heal_with_heartbeats() -> None:
    agg = make()
    heart = {"freq": 2.0, "hostname": "batch1@pod"}
    teach(agg, "batch1@pod", "batch1")
    feed(agg, [ev("worker-heartbeat", T0, active=0, **heart)])
    feed(agg, [ev("task-received", T0 + 0.5, uuid="x", name="app.x", hostname="batch1@pod")])
    feed(agg, [ev("task-started", T0 + 0.5, uuid="x", hostname="batch1@pod")])
    feed(agg, [ev("worker-heartbeat", T0 + 2, active=1, **heart)])
    assert _active(agg, "batch1", T0 + 2) == 1
    # task-succeeded of "x" is lost. The next heartbeat says 0 running, but "x" started
    # after the previous heartbeat: its finish may still be on its way; kept once ...
    feed(agg, [ev("worker-heartbeat", T0 + 4, active=0, **heart)])
    assert _active(agg, "batch1", T0 + 4) == 1
    # ... and dropped at the next one.
    feed(agg, [ev("worker-heartbeat", T0 + 6, active=0, **heart)])
    assert _active(agg, "batch1", T0 + 6) == 0


def test_tasks_we_did_not_see_start_count_from_the_heartbeat() -> None:
    """An exporter that restarts mid-stream: the workers' heartbeats know what runs."""
    agg = make()
    heart = {"freq": 2.0, "hostname": "celery@celery-batch0-abc-xyz"}
    teach(agg, heart["hostname"], "batch0")
    feed(agg, [ev("worker-heartbeat", T0, active=2, **heart)])
    assert _active(agg, "batch0", T0) == 2
    # One of the two finishes: its event names no task we know; one is left.
    feed(agg, [ev("task-succeeded", T0 + 1, uuid="old", runtime=9.0, **_host(heart))])
    assert _active(agg, "batch0", T0 + 1) == 1
    assert counts(view(agg, T0 + 1)) == {("batch0", UNKNOWN, "succeeded"): 1}
    # A start the heartbeat already counted (task events are buffered by the worker,
    # heartbeats are not) does not count twice.
    feed(agg, [ev("worker-heartbeat", T0 + 2, active=2, **heart)])
    feed(agg, [ev("task-started", T0 + 2.1, uuid="new", **_host(heart))])
    assert _active(agg, "batch0", T0 + 2.1) == 2


def test_workers_expire_by_celerys_heartbeat_rule() -> None:
    agg = make()
    feed(agg, [ev("worker-online", T0, freq=2.0, active=0, hostname="batch1@a")])
    feed(agg, [ev("worker-heartbeat", T0, freq=5.0, active=1, hostname="batch1@b")])
    agg.learned("batch1@a", ["batch1"])
    agg.learned("batch1@b", ["batch1"])
    feed(agg, [ev("task-started", T0, uuid="t", hostname="batch1@b")])
    q = view(agg, T0 + 3.9).queue("batch1")
    assert q is not None and (q.workers, q.active) == (2, 1)
    # Two heartbeat intervals without one: gone (2 x 2 s for a, 2 x 5 s for b).
    q = view(agg, T0 + 4.1).queue("batch1")
    assert q is not None and (q.workers, q.active) == (1, 1)
    q = view(agg, T0 + 10.1).queue("batch1")
    assert q is not None and (q.workers, q.active) == (0, 0)
    # worker-offline (a warm shutdown) at once.
    feed(agg, [ev("worker-online", T0 + 11, freq=2.0, active=0, hostname="batch1@c")])
    feed(agg, [ev("worker-offline", T0 + 11.5, hostname="batch1@c")])
    q = view(agg, T0 + 12).queue("batch1")
    assert q is not None and q.workers == 0
    assert agg.tracked()[1] == 0


def test_configured_batches_are_always_in_the_view() -> None:
    v = view(make())
    assert [q.queue for q in v.queues] == sorted(BATCHES)
    assert all(q.active == 0 and q.workers == 0 and not q.task_events for q in v.queues)
    assert v.tasks == ()


BROKEN: list[Any] = [
    {},
    {"type": None},
    {"type": 42},
    {"type": "task-started"},
    {"type": "task-started", "uuid": 7, "hostname": "batch1@x"},
    {"type": "task-succeeded", "uuid": "z", "runtime": "fast", "hostname": "batch1@x"},
    {"type": "task-succeeded", "uuid": "y", "runtime": math.nan, "hostname": "batch1@x"},
    {"type": "task-succeeded", "uuid": "w", "runtime": -1.0, "hostname": "batch1@x"},
    {"type": "task-succeeded", "uuid": "v", "runtime": math.inf, "hostname": ["batch1"]},
    {"type": "worker-heartbeat", "hostname": "batch1@x", "active": "many", "freq": "x"},
    {"type": "worker-heartbeat", "hostname": 3},
    {"type": "task-sent", "uuid": "s", "queue": {"not": "a name"}, "name": None},
    {"type": "task-received", "uuid": "r", "name": ["a", "list"], "hostname": "batch1@x"},
    {"type": "worker-offline"},
    {"type": "something-new", "uuid": "n"},
]


def test_broken_and_hostile_events_are_counted_and_ignored() -> None:
    agg = make()
    feed(agg, BROKEN)
    v = view(agg)
    assert v.received == len(BROKEN)
    # Run times that are not finite non-negative numbers are not observed.
    assert all(t.runtime_count == 0 for t in v.tasks)


names = st.sampled_from(["batch0@a", "batch1@b", "celery@celery-batch1-x-y", "x@y"])
uuids = st.sampled_from([f"u{i}" for i in range(30)])
kinds = st.sampled_from(
    ["task-sent", "task-received", "task-started", "task-succeeded", "task-failed",
     "task-retried", "task-rejected", "task-revoked", "worker-heartbeat", "worker-offline"]
)  # fmt: skip


@st.composite
def streams(draw: st.DrawFn) -> list[dict[str, Any]]:
    out = []
    t = T0
    for _ in range(draw(st.integers(0, 120))):
        t += draw(st.floats(0, 3))
        kind = draw(kinds)
        e = ev(kind, t, uuid=draw(uuids), hostname=draw(names))
        if kind == "task-sent":
            e["queue"] = draw(st.sampled_from(["batch0", "batch1", "reports", "a", "b"]))
        if kind in ("task-sent", "task-received"):
            e["name"] = draw(st.sampled_from(["app.a", "app.b", "app.c"]))
        if kind == "task-succeeded":
            e["runtime"] = draw(st.floats(0, 5000))
        if kind == "worker-heartbeat":
            e["active"], e["freq"] = draw(st.integers(0, 4)), 2.0
        out.append(e)
    return out


@settings(max_examples=examples(200), deadline=None)
@given(streams())
def test_any_stream_counts_exactly_and_stays_bounded(stream: list[dict[str, Any]]) -> None:
    agg = make(max_tracked_tasks=100, max_queues=2, max_task_names=2)
    feed(agg, stream)
    now = stream[-1]["local_received"] if stream else T0
    v = agg.view(now, up=True, since=T0, error=None)
    expected = Counter(e["type"].removeprefix("task-") for e in stream if e["type"] in _TASKS)
    got: Counter[str] = Counter()
    for t in v.tasks:
        got.update(t.states)
        assert set(t.states) <= set(TASK_STATES)
        assert t.runtime_count == t.states.get("succeeded", 0)
    assert got == expected
    assert v.received == len(stream)
    assert all(q.active >= 0 and q.workers >= 0 for q in v.queues)
    assert len({t.queue for t in v.tasks} - set(BATCHES) - {UNKNOWN, OTHER}) <= 2
    assert len({t.task for t in v.tasks} - {UNKNOWN, OTHER}) <= 2
    assert agg.tracked()[0] <= 100


_TASKS = {f"task-{s}" for s in TASK_STATES}


def _active(agg: EventAggregator, queue: str, now: float = T0 + 1) -> int:
    q = agg.view(now, up=True, since=T0, error=None).queue(queue)
    assert q is not None
    return q.active


def _host(heart: dict[str, Any]) -> dict[str, Any]:
    return {"hostname": heart["hostname"]}
