"""An early-ack batch with two running tasks keeps its replica until they finish.

Real parts: Redis, the exporter's source with its events consumer, the autoscaler's loop
and the local backend's `celery worker -E` processes with Celery's default early
acknowledgement (a running task is in no Redis structure). With events the snapshot
shows `celery_queue_active_tasks` 2 and the batch stays at 1 replica until both tasks
are done; without them the same batch looks idle and goes to 0 while they run.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from autoscaler.backends.local import LocalBackend, WorkerPool
from autoscaler.loop import Autoscaler
from autoscaler.policy import Decision, Reason
from batchctl.claims.redis_store import RedisClaimStore
from batchctl.config import Config
from batchctl.demo.tasks import ENV_ACKS_LATE, done_count, enqueue, make_app
from exporter.collect import InProcessSource
from exporter.http.exposition import render_snapshot
from exporter.runtime import build_source
from tests.support.autoscaler import local_config
from tests.support.metrics import sample
from tests.support.servers.redis import RedisServer
from tests.support.waits import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(150)]
QUEUE = "batch1"
TASK_SECONDS = 6.0


def cfg_for(url: str, events: bool) -> Config:
    return local_config(
        url,
        QUEUE,
        {
            "idle_after_seconds": 1,
            "step_interval_seconds": 1,
            "max_task_seconds": 30,
            "worker_concurrency": 2,
            "prefetch_multiplier": 1,
        },
        events={"enabled": events},
    )


class Run:
    def __init__(self, cfg: Config, run_dir: Path) -> None:
        self.pool = WorkerPool.from_config(cfg, run_dir)
        self.source: InProcessSource = build_source(cfg, background=False)
        self.scaler = Autoscaler(cfg, self.source, LocalBackend(self.pool, [QUEUE]))
        self.decisions: list[tuple[float, Decision, int]] = []  # (when, decision, done)

    def tick(self, r: redis.Redis) -> Decision:
        (d,) = self.scaler.tick()
        self.decisions.append((time.monotonic(), d, done_count(r, QUEUE)))
        return d

    def close(self) -> None:
        self.pool.shutdown(timeout=40)
        self.source.stop()


@pytest.fixture
def early_acks(monkeypatch: pytest.MonkeyPatch) -> None:
    # The worker processes the local backend starts inherit it.
    monkeypatch.setenv(ENV_ACKS_LATE, "0")


@pytest.fixture
def start(
    early_acks: None, redis_server: RedisServer, redis_db: redis.Redis, tmp_path: Path
) -> Iterator[object]:
    made: list[Run] = []

    def make(events: bool) -> Run:
        RedisClaimStore(redis_db).claim(QUEUE, "alice", "events test", 3600, time.time())
        enqueue(make_app(redis_server.url), QUEUE, 2, seconds=TASK_SECONDS, priorities=[0])
        run = Run(cfg_for(redis_server.url, events), tmp_path / f"run-{events}")
        made.append(run)
        return run

    yield make
    for run in made:
        run.close()


def test_with_events_the_replica_stays_until_the_running_tasks_finish(
    start, redis_db: redis.Redis
) -> None:  # type: ignore[no-untyped-def]
    run: Run = start(events=True)
    assert run.tick(redis_db).reason == Reason.FROM_ZERO

    # Both tasks start: acknowledged at once (early acks), so soon nothing waits and
    # nothing is in flight in Redis. The task-started events may arrive a few
    # milliseconds before the worker's ack has emptied `unacked`: one snapshot must
    # show all of it.
    def running_and_acked() -> bool:
        snap = run.source.collect()
        a, q = snap.activity(QUEUE), snap.queue(QUEUE)
        return (
            a is not None and a.active == 2 and q is not None and (q.waiting, q.unacked) == (0, 0)
        )

    wait_for(running_and_acked, 40, what="two running tasks in the events, none in Redis")
    snap = run.source.collect()
    text = render_snapshot(snap, version="t", kubernetes_enabled=False)
    assert sample(text, "celery_queue_active_tasks", {"queue": QUEUE}) == 2
    # Tick while they run: the replica stays, its worker is not asked to stop.
    while done_count(redis_db, QUEUE) < 2:
        d = run.tick(redis_db)
        assert d.desired == 1, d
        assert run.pool.get_replicas(QUEUE) == 1 and run.pool.terminating_replicas() == 0
        time.sleep(0.5)
    # Done: idle, then to 0 after idle_after_seconds.
    wait_for(lambda: run.tick(redis_db).desired == 0, 20, interval=0.5, what="idle_to_zero")
    to_zero = [(d, done) for _, d, done in run.decisions if d.reason == Reason.IDLE_TO_ZERO]
    assert to_zero and to_zero[0][1] == 2, "went to zero before both tasks finished"


def test_without_events_the_same_batch_goes_to_zero_while_they_run(
    start, redis_db: redis.Redis
) -> None:  # type: ignore[no-untyped-def]
    run: Run = start(events=False)
    assert run.tick(redis_db).reason == Reason.FROM_ZERO

    def zero() -> bool:
        return run.tick(redis_db).reason == Reason.IDLE_TO_ZERO

    wait_for(zero, 40, interval=0.5, what="idle_to_zero")
    to_zero = [done for _, d, done in run.decisions if d.reason == Reason.IDLE_TO_ZERO]
    # Running tasks are invisible: the worker is stopped while they run (they finish
    # only thanks to the warm shutdown's grace period).
    assert to_zero[0] < 2
    assert run.source.collect().activity(QUEUE) is None  # events off: nothing to show
    wait_for(lambda: done_count(redis_db, QUEUE) == 2, 30, what="the grace period to save them")
