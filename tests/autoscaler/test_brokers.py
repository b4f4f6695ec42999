"""The autoscaler behaves the same on Redis and on RabbitMQ: a claimed batch goes from 0
to 1 on its first message, grows while the backlog lasts, never drops below what its
workers hold unacknowledged, and returns to 0 once everything is done.

Real parts on both brokers: the exporter's source (the Redis reader, or the RabbitMQ
reader over the management API), the autoscaler's loop, the local backend's `celery
worker` processes with late acks and a prefetch window, and a real producer. Claims in
the broker's Redis, or in a SQLite file with RabbitMQ (which keeps none).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from autoscaler.backends.local import LocalBackend, WorkerPool
from autoscaler.loop import Autoscaler
from autoscaler.policy import Reason
from batchctl.claims.service import store_for
from batchctl.config import Config, parse_config
from batchctl.demo.tasks import ENV_RECORD_URL, done_count, enqueue, make_app
from exporter.runtime import build_source
from tests.support.servers.redis import RedisServer
from tests.support.waits import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]
QUEUE = "batch1"
TASKS = 16
CONCURRENCY, PREFETCH = 1, 2  # each replica holds at most 2 messages unacknowledged


def cfg_for(broker: dict[str, object], claims: dict[str, object]) -> Config:
    return parse_config(
        {
            "broker": {"timeout_seconds": 5, **broker},
            "kubernetes": {"enabled": False},
            "exporter": {"autoscaler_url": None},
            "claims": claims,
            "batches": [
                {
                    "queue": QUEUE,
                    "deployment": "celery-batch1",
                    "max_replicas": 3,
                    "idle_after_seconds": 1,
                    "step_interval_seconds": 1,
                    "max_task_seconds": 30,
                    "worker_concurrency": CONCURRENCY,
                    "prefetch_multiplier": PREFETCH,
                }
            ],
            "autoscaler": {
                "backend": "local",
                "local_app": "batchctl.demo.tasks",
                "local_concurrency": CONCURRENCY,
                "interval_seconds": 0.5,
            },
        },
        env={},
    )


@pytest.fixture(params=["redis", "rabbitmq"])
def broker_cfg(
    request: pytest.FixtureRequest,
    redis_server: RedisServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Config:
    """The same batch on each broker. Task ids are recorded in the test's Redis either
    way (RabbitMQ keeps no sets): the workers the local backend starts inherit it."""
    monkeypatch.setenv(ENV_RECORD_URL, redis_server.url)
    if request.param == "redis":
        return cfg_for({"url": redis_server.url}, {"store": "redis"})
    v = request.getfixturevalue("rabbitmq")
    # The workers consume with this URL too (the local backend): the vhost's admin.
    return cfg_for(
        {"url": v.url, "management_url": v.management_url},
        {"store": "sqlite", "sqlite_path": str(tmp_path / "claims.sqlite3")},
    )


@pytest.fixture
def record(redis_server: RedisServer) -> Iterator[redis.Redis]:
    client = redis_server.client()
    try:
        yield client
    finally:
        client.close()


def test_a_claimed_batch_scales_from_zero_and_never_below_its_unacked_work(
    broker_cfg: Config, record: redis.Redis, tmp_path: Path
) -> None:
    cfg = broker_cfg
    store = store_for(cfg)
    try:
        store.claim(QUEUE, "alice", "brokers test", 3600, time.time())
    finally:
        store.close()
    enqueue(make_app(cfg.broker.url), QUEUE, TASKS, seconds=1.0, priorities=[0, 9], seed=5)
    pool = WorkerPool.from_config(cfg, tmp_path / "run", prefetch_multiplier=PREFETCH)
    source = build_source(cfg, background=False)
    scaler = Autoscaler(cfg, source, LocalBackend(pool, [QUEUE]))
    seen: list[tuple[int, str, int]] = []  # (desired, reason, unacked the tick saw)
    try:
        # The broker's figures may lag its queue a moment (RabbitMQ's statistics).
        wait_for(lambda: source.collect().queue(QUEUE).waiting > 0, 30, what="the backlog")  # type: ignore[union-attr]

        def tick() -> bool:
            (d,) = scaler.tick()
            q = source.last.queue(QUEUE) if source.last is not None else None
            seen.append((d.desired, str(d.reason), q.unacked if q is not None else -1))
            return d.desired == 0 and done_count(record, QUEUE) == TASKS

        assert not tick() and seen[0][:2] == (1, str(Reason.FROM_ZERO)), seen
        wait_for(tick, 150, interval=0.5, what="all tasks done and the batch back at 0")
    finally:
        pool.shutdown(timeout=40)
        source.stop()
    assert done_count(record, QUEUE) == TASKS
    assert max(d for d, _, _ in seen) >= 2, seen  # the backlog made it grow
    assert any(u > 0 for _, _, u in seen), "no tick saw work in flight"
    for desired, reason, unacked in seen:
        # Never fewer replicas than the unacknowledged messages need.
        assert desired >= math.ceil(unacked / (CONCURRENCY * PREFETCH)), (desired, reason, seen)
    assert seen[-1][:2] == (0, str(Reason.IDLE_TO_ZERO)), seen[-3:]
