"""ETA tasks hold one replica, not four, and none is lost when replicas go.

Real parts: Redis, Celery producers sending 40 tasks with countdown=3600, the local
backend's `celery worker` processes (concurrency 2, prefetch 1, late acks), the exporter's
source and the autoscaler's loop. One worker takes all 40 into `unacked` (Celery raises its
QoS for each ETA task); after a manual scale to 4 ends, the batch settles at one replica
within idle_after_seconds plus a few ticks with reason `scheduled`, and a warm shutdown of
the last worker hands every ETA message back to the queue.
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
from batchctl.demo.tasks import TASK_NAME, make_app
from exporter.collect import InProcessSource
from exporter.http.exposition import render_snapshot
from exporter.runtime import build_source
from tests.support.autoscaler import local_config
from tests.support.metrics import sample
from tests.support.servers.redis import RedisServer
from tests.support.waits import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(240)]
QUEUE = "batch1"
TASKS = 40
IDLE_AFTER = 5.0
OVERRIDE = 3.0
TICK = 0.5


def cfg_for(url: str) -> Config:
    return local_config(
        url,
        QUEUE,
        {
            "max_replicas": 4,
            "idle_after_seconds": IDLE_AFTER,
            "step_interval_seconds": 1,
            "manual_override_seconds": OVERRIDE,
            "max_task_seconds": 20,
            "worker_concurrency": 2,
            "prefetch_multiplier": 1,
        },
    )


def in_lists(r: redis.Redis) -> int:
    return sum(int(r.llen(k)) for k in r.keys(f"{QUEUE}*") if r.type(k) == b"list")


class Run:
    def __init__(self, cfg: Config, run_dir: Path) -> None:
        self.pool = WorkerPool.from_config(cfg, run_dir)
        self.source: InProcessSource = build_source(cfg, background=False)
        self.scaler = Autoscaler(cfg, self.source, LocalBackend(self.pool, [QUEUE]))
        self.decisions: list[tuple[float, Decision]] = []

    def tick(self) -> Decision:
        (d,) = self.scaler.tick()
        self.decisions.append((time.monotonic(), d))
        return d

    def close(self) -> None:
        self.pool.shutdown(timeout=60)
        self.source.stop()


@pytest.fixture
def run(redis_server: RedisServer, redis_db: redis.Redis, tmp_path: Path) -> Iterator[Run]:
    RedisClaimStore(redis_db).claim(QUEUE, "alice", "eta test", 3600, time.time())
    app = make_app(redis_server.url)
    task = app.tasks[TASK_NAME]
    with app.producer_or_acquire() as producer:
        for _ in range(TASKS):
            task.apply_async(args=(0.1,), queue=QUEUE, countdown=3600, producer=producer)
    r = Run(cfg_for(redis_server.url), tmp_path / "run")
    try:
        yield r
    finally:
        r.close()


def test_countdown_tasks_settle_at_one_replica_and_none_is_lost(
    run: Run, redis_db: redis.Redis
) -> None:
    assert run.tick().reason == Reason.FROM_ZERO  # 40 waiting at 0 replicas

    def all_held() -> bool:
        q = run.source.collect().queue(QUEUE)
        return q is not None and (q.waiting, q.unacked, q.scheduled) == (0, TASKS, TASKS)

    wait_for(all_held, 60, 0.2, what="one worker holding all 40 ETA tasks in unacked")
    snap = run.source.collect()
    text = render_snapshot(snap, version="t", kubernetes_enabled=False)
    assert sample(text, "celery_queue_scheduled", {"queue": QUEUE}) == TASKS
    assert sample(text, "celery_queue_unacked", {"queue": QUEUE}) == TASKS
    # With only scheduled work the batch keeps its one replica (not idle_to_zero).
    for _ in range(4):
        d = run.tick()
        assert d.desired == 1 and d.reason in (Reason.SCHEDULED, Reason.IDLE), d
        time.sleep(TICK)

    # Someone scales to 4 by hand: hands off for manual_override_seconds.
    run.pool.set_replicas(QUEUE, 4)
    scaled_at = time.monotonic()
    assert run.tick().reason == Reason.MANUAL_OVERRIDE
    wait_for(lambda: run.pool.ready_replicas(QUEUE) == 4, 60, what="4 ready workers")

    def settled() -> bool:
        d = run.tick()
        time.sleep(TICK)
        return d.desired <= 1 and run.pool.get_replicas(QUEUE) <= 1

    wait_for(settled, 60, 0.0, what="the batch back at one replica")
    ended = scaled_at + OVERRIDE
    first_down = next(t for t, d in run.decisions if t > scaled_at and d.desired <= 1)
    # Within idle_after_seconds (plus a few ticks) of the override's end; the idle
    # timer ran all along, so in practice at its end.
    assert first_down - ended <= IDLE_AFTER + 6 * TICK, first_down - ended
    down = [d for t, d in run.decisions if t > scaled_at and d.reason != Reason.MANUAL_OVERRIDE]
    assert down[0].reason in (Reason.SCHEDULED, Reason.IDLE_STEP_DOWN), down[0]
    # Then it stays at one, with a reason of its own, and never goes to zero.
    for _ in range(6):
        d = run.tick()
        assert (d.desired, d.reason) == (1, Reason.SCHEDULED), d
        time.sleep(TICK)
    wait_for(lambda: run.pool.terminating_replicas() == 0, 60, what="the three to stop")
    q = run.source.collect().queue(QUEUE)
    assert q is not None and q.waiting + q.unacked == TASKS  # nothing lost

    # A warm shutdown of the last worker hands every ETA message back to the queue.
    run.pool.set_replicas(QUEUE, 0)
    wait_for(lambda: run.pool.get_replicas(QUEUE) + run.pool.terminating_replicas() == 0, 60)
    assert in_lists(redis_db) == TASKS
    assert redis_db.hlen("unacked") == 0
