"""Celery's own events from real `celery worker -E` processes on the real Redis.

Tasks that succeed, fail, retry and run for known durations; counters and the run-time
histogram match exactly what ran. A worker killed mid-task, events of a queue that is
not configured, an exporter restarted mid-stream: nothing crashes, and what is shown
heals.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from batchctl.config import parse_config
from batchctl.demo.tasks import FAIL_TASK, FLAKY_TASK, TASK_NAME, make_app
from exporter.events.consumer import EventsConsumer
from exporter.events.model import UNKNOWN, TaskStats
from exporter.http.exposition import render_snapshot
from exporter.live import Live
from exporter.snapshot import Snapshot
from tests.support.exporter import serving
from tests.support.http import get
from tests.support.metrics import sample
from tests.support.servers.redis import EmbeddedRedis, RedisServer
from tests.support.waits import wait_for
from tests.support.workers import (
    Worker,
    activity,
    events_config,
    wait_connected,
    wait_workers,
    workers,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


@pytest.fixture
def consumer(redis_server: RedisServer, redis_db: redis.Redis) -> Iterator[EventsConsumer]:
    c = EventsConsumer(events_config(redis_server.url))
    c.start()
    wait_connected(c)
    try:
        yield c
    finally:
        c.stop()


def stats(c: EventsConsumer, queue: str, task: str) -> TaskStats:
    found = [t for t in c.view(time.time()).tasks if (t.queue, t.task) == (queue, task)]
    return found[0] if found else TaskStats(queue, task)


def test_counters_and_histogram_match_exactly_what_ran(
    consumer: EventsConsumer, redis_server: RedisServer, tmp_path: Path
) -> None:
    app = make_app(redis_server.url, sent_events=True)
    with workers(tmp_path) as started:
        started.append(Worker(redis_server.url, "batch1", "batch1@events-a", tmp_path / "w.log"))
        wait_workers(consumer, "batch1", 1)
        for seconds in (0.3, 0.3, 1.5):
            app.tasks[TASK_NAME].apply_async(args=(seconds,), queue="batch1")
        for _ in range(2):
            app.tasks[FAIL_TASK].apply_async(args=(0.0,), queue="batch1")
        app.tasks[FLAKY_TASK].apply_async(args=(0.15, 2), queue="batch1")
        wait_for(
            lambda: (
                activity(consumer, "batch1").completed == 6
                and stats(consumer, "batch1", FLAKY_TASK).states.get("retried") == 2
            ),
            60,
            what="4 successes, 2 failures and 2 retries",
        )
        time.sleep(0.5)  # anything more would arrive now: there must be nothing
    work, fail, flaky = (stats(consumer, "batch1", t) for t in (TASK_NAME, FAIL_TASK, FLAKY_TASK))
    assert dict(work.states) == {"sent": 3, "received": 3, "started": 3, "succeeded": 3}
    assert dict(fail.states) == {"sent": 2, "received": 2, "started": 2, "failed": 2}
    # The producer sent it once; the worker re-published it twice (no sent event from the
    # worker's app) and ran it three times.
    assert dict(flaky.states) == {
        "sent": 1, "received": 3, "started": 3, "retried": 2, "succeeded": 1,
    }  # fmt: skip
    # Run times: 0.3, 0.3 (<= 0.5 s), 1.5 (<= 2.5 s); the flaky task's last run 0.15 s.
    le = dict(work.cumulative_buckets())
    assert (le[0.25], le[0.5], le[1.0], le[2.5], le[float("inf")]) == (0, 2, 2, 3, 3)
    assert 2.1 <= work.runtime_sum < 2.4
    le = dict(flaky.cumulative_buckets())
    assert (le[0.1], le[0.25], le[float("inf")]) == (0, 1, 1)
    assert fail.runtime_count == 0  # failures have no run time
    q = activity(consumer, "batch1")
    assert (q.succeeded, q.failed, q.active, q.task_events) == (4, 2, 0, True)

    # What /metrics shows of it.
    snap = Snapshot(time.time(), 0.0, True, None, events=consumer.view(time.time()))
    text = render_snapshot(snap, version="t", kubernetes_enabled=False)
    task = {"queue": "batch1", "task": TASK_NAME}
    assert sample(text, "celery_events_up") == 1
    assert sample(text, "celery_task_events_total", {**task, "state": "succeeded"}) == 3
    assert sample(text, "celery_task_runtime_seconds_bucket", {**task, "le": "0.5"}) == 2
    assert sample(text, "celery_task_runtime_seconds_count", task) == 3
    assert sample(text, "celery_queue_active_tasks", {"queue": "batch1"}) == 0


def test_a_worker_killed_mid_task_heals(
    consumer: EventsConsumer, redis_server: RedisServer, tmp_path: Path
) -> None:
    app = make_app(redis_server.url)
    with workers(tmp_path) as started:
        w = Worker(redis_server.url, "batch2", "batch2@events-k", tmp_path / "k.log")
        started.append(w)
        wait_workers(consumer, "batch2", 1)
        app.tasks[TASK_NAME].apply_async(args=(60,), queue="batch2")
        wait_for(lambda: activity(consumer, "batch2").active == 1, 30, what="a running task")
        w.kill()
        # No task-failed, no worker-offline: its heartbeats stop, and after two heartbeat
        # intervals (Celery's rule) the worker and its running task are gone.
        wait_for(
            lambda: (
                activity(consumer, "batch2").workers == 0
                and activity(consumer, "batch2").active == 0
            ),
            15,
            what="the killed worker to expire",
        )
    assert consumer.up
    assert dict(stats(consumer, "batch2", TASK_NAME).states) == {"received": 1, "started": 1}


def test_events_of_queues_that_are_not_configured(
    consumer: EventsConsumer, redis_server: RedisServer, tmp_path: Path
) -> None:
    """`reports` is no batch: its producer's task-sent names it; `misc` is named by
    nothing (no task-sent, and its worker consumes two queues): unknown. The batches
    count nothing."""
    with_sent = make_app(redis_server.url, sent_events=True)
    without = make_app(redis_server.url)
    with workers(tmp_path) as started:
        started.append(
            Worker(redis_server.url, "reports", "celery@reports-host", tmp_path / "r.log")
        )
        started.append(
            Worker(redis_server.url, "misc,misc2", "celery@misc-host", tmp_path / "m.log")
        )
        wait_for(lambda: consumer.aggregator.tracked()[1] == 2, 30, what="two workers")
        with_sent.tasks[TASK_NAME].apply_async(args=(0.05,), queue="reports")
        without.tasks[TASK_NAME].apply_async(args=(0.05,), queue="misc")
        wait_for(
            lambda: (
                activity(consumer, "reports").succeeded == 1
                and activity(consumer, UNKNOWN).succeeded == 1
            ),
            30,
            what="one success in reports, one unknown",
        )
    view = consumer.view(time.time())
    assert {t.queue for t in view.tasks} == {"reports", UNKNOWN}
    for batch in ("batch0", "batch1", "batch2", "batch3"):
        q = view.queue(batch)
        assert q is not None and (q.completed, q.task_events) == (0, False)


def test_an_exporter_restarted_mid_stream(
    redis_server: RedisServer, redis_db: redis.Redis, tmp_path: Path
) -> None:
    """Counters start over; tasks that were running show from the workers' heartbeats,
    and their ends are counted (task name unknown: the new exporter never saw them)."""
    cfg = events_config(redis_server.url)
    app = make_app(redis_server.url)
    first = EventsConsumer(cfg)
    first.start()
    second = EventsConsumer(cfg)
    try:
        wait_connected(first)
        with workers(tmp_path) as started:
            started.append(
                Worker(redis_server.url, "batch1", "batch1@events-r", tmp_path / "r.log")
            )
            wait_workers(first, "batch1", 1)
            for _ in range(2):
                app.tasks[TASK_NAME].apply_async(args=(4.0,), queue="batch1")
            wait_for(lambda: activity(first, "batch1").active == 2, 30, what="two running")
            first.stop()
            second.start()
            wait_connected(second)
            # The receiver asks for a heartbeat at once on connecting.
            wait_for(lambda: activity(second, "batch1").active == 2, 10, what="two from heartbeats")
            assert stats(second, "batch1", TASK_NAME).states == {}
            wait_for(lambda: activity(second, "batch1").succeeded == 2, 30, what="both done")
            assert activity(second, "batch1").active == 0
        assert dict(stats(second, "batch1", UNKNOWN).states) == {"succeeded": 2}
        assert activity(first, "batch1").succeeded == 0  # stopped before they ended
    finally:
        first.stop()
        second.stop()


def test_the_consumer_reconnects_after_the_broker_comes_back(own_redis, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg = events_config(own_redis.url, reconnect_max_seconds=1)
    consumer = EventsConsumer(cfg)
    consumer.start()
    try:
        wait_connected(consumer)
        own_redis.stop()
        wait_for(lambda: not consumer.up, 15, what="the consumer to notice")
        assert consumer.error and "***" not in consumer.error
        assert consumer.view(time.time()).up is False
        own_redis.start()
        wait_for(lambda: consumer.up, 15, what="the consumer to reconnect")
        assert consumer.connections == 2 and consumer.error is None
    finally:
        consumer.stop()


# The broker's timeout in the stalled-broker test, and what a busy shared 2-core machine
# may add to a scrape (correctness bounds, as in tests/exporter/test_outages.py).
TIMEOUT = 1.0
SLACK = 1.0


def test_events_up_follows_a_broker_that_stalls(own_redis: EmbeddedRedis) -> None:
    """A broker that accepts connections and does not answer (its redis-server stopped
    with SIGSTOP: the consumer's connection stays open and silent, as with a hung host):
    /metrics says celery_events_up 0 within broker.timeout_seconds, and 1 again once
    it answers (SIGCONT)."""
    cfg = parse_config(
        {
            "broker": {"url": own_redis.url, "timeout_seconds": TIMEOUT},
            "kubernetes": {"enabled": False},
            "events": {"enabled": True, "reconnect_max_seconds": 1},
            "exporter": {"autoscaler_url": None, "snapshot_reuse_seconds": 0},
        },
        env={},
    )
    live = Live.from_config(cfg)
    assert live.consumer is not None
    with serving(cfg, live) as (base, _):

        def scrape() -> tuple[float | None, float | None, float]:
            t0 = time.monotonic()
            status, _, text = get(f"{base}/metrics", timeout=30)
            assert status == 200
            took = time.monotonic() - t0
            return sample(text, "celery_events_up"), sample(text, "celery_broker_up"), took

        wait_for(lambda: scrape()[:2] == (1, 1), 15, what="events up on /metrics")
        assert own_redis.proc is not None
        pid = own_redis.proc.pid
        os.kill(pid, signal.SIGSTOP)
        try:
            events_up, broker_up, took = scrape()
            assert (events_up, broker_up) == (0, 0), "a stalled broker delivers no events"
            assert took < TIMEOUT + SLACK, took
            # Still 0 on the next scrape: the read left waiting on Redis holds up nothing.
            assert scrape()[:2] == (0, 0)
        finally:
            os.kill(pid, signal.SIGCONT)
        wait_for(lambda: scrape()[:2] == (1, 1), 15, what="events up again on /metrics")
