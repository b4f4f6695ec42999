"""Workers belong to the queues they consume, never to a name: real `celery worker -E`
processes answer Celery's `active_queues`, and the exporter counts by that.

- Look-alikes: `data-manager-search@...` consumes `search`, and
  `celery@data-manager-storage-7d9f8c7b5-x2x4q` (a pod of another Deployment) consumes
  `storage`. The batch `data-manager` gets none of their workers, tasks or events, and
  the autoscaler takes it to 0 while they run.
- A worker started with `-Q batch1,batch2`: one worker for each queue; 20 tasks each
  count at most 20 and 20 without `task-sent` events (they are `unknown`: the worker
  consumes two queues), exactly 20 and 20 with them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from autoscaler.loop import Autoscaler
from autoscaler.policy import Reason
from batchctl.claims.redis_store import RedisClaimStore
from batchctl.config import Config, parse_config
from batchctl.demo.tasks import TASK_NAME, make_app
from exporter.events.consumer import EventsConsumer
from exporter.events.model import UNKNOWN
from exporter.http.exposition import render_snapshot
from exporter.runtime import build_source
from tests.support.autoscaler import RecordingBackend
from tests.support.metrics import sample
from tests.support.servers.redis import RedisServer
from tests.support.waits import wait_for
from tests.support.workers import (
    Worker,
    activity,
    events_config,
    wait_connected,
    workers,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(180)]
BATCH = "data-manager"


def lookalike_config(url: str) -> Config:
    return parse_config(
        {
            "broker": {"url": url},
            "kubernetes": {"enabled": False},
            "events": {"enabled": True},
            "exporter": {"autoscaler_url": None},
            "batches": [
                {
                    "queue": BATCH,
                    "deployment": "data-manager",
                    "idle_after_seconds": 2,
                    "step_interval_seconds": 1,
                }
            ],
            "autoscaler": {"backend": "dry-run", "interval_seconds": 0.5},
        },
        env={},
    )


def test_look_alike_workers_count_nothing_for_the_batch_and_it_goes_to_zero(
    redis_server: RedisServer, redis_db: redis.Redis, tmp_path: Path
) -> None:
    cfg = lookalike_config(redis_server.url)
    RedisClaimStore(redis_db).claim(BATCH, "alice", "look-alikes", 3600, time.time())
    source = build_source(cfg, background=False)
    backend = RecordingBackend({BATCH: 2})  # two replicas left from an earlier run
    scaler = Autoscaler(cfg, source, backend)
    app = make_app(redis_server.url)
    try:
        with workers(tmp_path) as started:
            started.append(
                Worker(redis_server.url, "search", "data-manager-search@node-a", tmp_path / "s.log")
            )
            started.append(
                Worker(
                    redis_server.url,
                    "storage",
                    "celery@data-manager-storage-7d9f8c7b5-x2x4q",
                    tmp_path / "t.log",
                )
            )
            for queue in ("search", "search", "storage", "storage"):
                app.tasks[TASK_NAME].apply_async(args=(30,), queue=queue)

            def running() -> bool:
                snap = source.collect()
                a, b = snap.activity("search"), snap.activity("storage")
                return a is not None and b is not None and (a.active, b.active) == (2, 2)

            wait_for(running, 60, 0.2, what="two tasks running on each look-alike")
            snap = source.collect()
            text = render_snapshot(snap, version="t", kubernetes_enabled=False)
            assert sample(text, "celery_queue_workers", {"queue": BATCH}) == 0
            assert sample(text, "celery_queue_active_tasks", {"queue": BATCH}) == 0
            assert sample(text, "celery_queue_workers", {"queue": "search"}) == 1
            assert sample(text, "celery_queue_workers", {"queue": "storage"}) == 1
            assert not [t for t in snap.events.tasks if t.queue == BATCH]  # type: ignore[union-attr]

            # Nothing waits, nothing in flight, nothing running: the batch goes to 0.
            def at_zero() -> bool:
                scaler.tick()
                time.sleep(0.5)
                return backend.replicas[BATCH] == 0

            wait_for(at_zero, 20, 0.0, what="the batch at 0 replicas")
            assert scaler.last_decisions[0].reason == Reason.IDLE_TO_ZERO
            # The look-alikes were running all along.
            snap = source.collect()
            assert snap.activity("search").active == 2  # type: ignore[union-attr]
    finally:
        source.stop()


@pytest.fixture
def consumer(redis_server: RedisServer) -> Iterator[EventsConsumer]:
    c = EventsConsumer(events_config(redis_server.url))
    c.start()
    wait_connected(c)
    try:
        yield c
    finally:
        c.stop()


@pytest.mark.parametrize("sent_events", [False, True], ids=["no task-sent", "task-sent"])
def test_a_worker_of_two_queues_counts_for_both(
    consumer: EventsConsumer, redis_server: RedisServer, tmp_path: Path, sent_events: bool
) -> None:
    app = make_app(redis_server.url, sent_events=sent_events)
    with workers(tmp_path) as started:
        started.append(
            Worker(redis_server.url, "batch1,batch2", "celery@both-queues", tmp_path / "w.log")
        )
        wait_for(
            lambda: (
                (activity(consumer, "batch1").workers, activity(consumer, "batch2").workers)
                == (1, 1)
            ),
            30,
            what="the worker counted for batch1 and for batch2",
        )
        for queue in ("batch1", "batch2"):
            for _ in range(20):
                app.tasks[TASK_NAME].apply_async(args=(0.01,), queue=queue)

        def finished() -> int:
            view = consumer.view(time.time())
            return sum(q.succeeded for q in view.queues)

        wait_for(lambda: finished() == 40, 60, what="all 40 tasks done")
        b1, b2 = activity(consumer, "batch1"), activity(consumer, "batch2")
        assert (b1.workers, b2.workers) == (1, 1)
    if sent_events:
        assert (b1.succeeded, b2.succeeded) == (20, 20)
    else:
        # Nothing says which queue each came from: unknown, never 40 under one of them.
        assert b1.succeeded <= 20 and b2.succeeded <= 20
        assert activity(consumer, UNKNOWN).succeeded == 40 - b1.succeeded - b2.succeeded
