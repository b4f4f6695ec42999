"""Stranded in-flight work brings a claimed batch to one replica, which restores it.

Real parts: Redis, a Celery producer, a real `celery worker` (late acks, prefetch 100)
that takes 200 tasks into `unacked` and is then SIGKILLed (no goodbye: nothing is
restored), the exporter's source and the autoscaler's loop with the local backend. The
entries' delivery times in `unacked_index` are moved two hours back, as if the worker
had died then: past kombu's 1 h visibility_timeout, with no worker to restore them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from autoscaler.backends.local import LocalBackend, WorkerPool
from autoscaler.loop import Autoscaler
from autoscaler.policy import Reason
from batchctl.claims.redis_store import RedisClaimStore
from batchctl.config import Config
from batchctl.demo.tasks import enqueue, make_app
from exporter.collect import InProcessSource
from exporter.http.exposition import render_snapshot
from exporter.runtime import build_source
from tests.support.autoscaler import local_config
from tests.support.metrics import sample
from tests.support.servers.redis import RedisServer
from tests.support.waits import wait_for
from tests.support.workers import Worker

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(180)]
QUEUE = "batch1"
STRANDED = 200


def cfg_for(url: str) -> Config:
    # visibility_timeout: kombu's default, 3600, in the app and in batchctl's config.
    return local_config(
        url,
        QUEUE,
        {"max_task_seconds": 1, "worker_concurrency": 2, "prefetch_multiplier": 1},
    )


@pytest.fixture
def stranded(redis_server: RedisServer, redis_db: redis.Redis, tmp_path: Path) -> Iterator[None]:
    """200 entries in `unacked` delivered 2 h ago by a worker that is gone."""
    enqueue(make_app(redis_server.url), QUEUE, STRANDED, seconds=60, priorities=[0])
    w = Worker(
        redis_server.url, QUEUE, "gone@test", tmp_path / "gone.log", concurrency=2, prefetch=100
    )
    try:
        wait_for(lambda: redis_db.hlen("unacked") == STRANDED, 60, what="200 messages in unacked")
    finally:
        w.kill()
    assert redis_db.hlen("unacked") == STRANDED and redis_db.llen(QUEUE) == 0
    two_hours_ago = time.time() - 7200
    redis_db.zadd("unacked_index", dict.fromkeys(redis_db.hkeys("unacked"), two_hours_ago), xx=True)
    yield


def test_200_stranded_entries_bring_a_claimed_batch_to_one_replica(
    stranded: None, redis_server: RedisServer, redis_db: redis.Redis, tmp_path: Path
) -> None:
    cfg = cfg_for(redis_server.url)
    source: InProcessSource = build_source(cfg, background=False)
    pool = WorkerPool.from_config(cfg, tmp_path / "run")
    scaler = Autoscaler(cfg, source, LocalBackend(pool, [QUEUE]))
    try:
        snap = source.collect()
        text = render_snapshot(snap, version="t", kubernetes_enabled=False)
        assert sample(text, "celery_queue_unacked_stranded", {"queue": QUEUE}) == STRANDED
        assert sample(text, "celery_queue_length", {"queue": QUEUE}) == 0

        # Unclaimed: reported, not scaled.
        (d,) = scaler.tick()
        assert (d.desired, d.reason) == (0, Reason.UNCLAIMED), d
        RedisClaimStore(redis_db).claim(QUEUE, "alice", "restore", 3600, time.time())
        (d,) = scaler.tick()
        assert (d.desired, d.reason) == (1, Reason.STRANDED), d
        assert "200 in flight past the visibility timeout" in d.detail
        assert pool.get_replicas(QUEUE) == 1

        # The worker restores them at its start: back in the queue (or taken again with
        # a new delivery time), none left stranded, none lost.
        def restored() -> bool:
            q = source.collect().queue(QUEUE)
            return q is not None and q.overdue == 0 and q.waiting + q.unacked == STRANDED

        wait_for(restored, 60, 0.2, what="the new worker to restore the 200")
        snap = source.collect()
        assert snap.stranded(QUEUE) == 0
        text = render_snapshot(snap, version="t", kubernetes_enabled=False)
        assert sample(text, "celery_queue_unacked_stranded", {"queue": QUEUE}) == 0
    finally:
        pool.shutdown(timeout=5)  # the restored tasks sleep 60 s: killed, not awaited
        source.stop()
