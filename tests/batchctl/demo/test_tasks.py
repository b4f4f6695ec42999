"""The demo Celery app: what `enqueue` puts in Redis, and what the task records."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import pytest
import redis

from autoscaler.backends.local import WorkerPool
from batchctl.demo import tasks as demo_tasks
from batchctl.demo.tasks import (
    TASK_NAME,
    _pipelined_publish,
    done_count,
    done_ids,
    done_key,
    enqueue,
    make_app,
)
from exporter.broker.redis.keys import PRIORITY_SEP
from tests.support.servers.redis import RedisServer
from tests.support.waits import wait_for


def _messages(r: redis.Redis, key: str) -> list[dict[str, Any]]:
    return [json.loads(m) for m in r.lrange(key, 0, -1)]


def test_app_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CELERY_BROKER_URL", "redis://example:6380/3")
    monkeypatch.setenv("BATCHCTL_BROKER_KEYPREFIX", "p:")
    monkeypatch.setenv("BATCHCTL_DEMO_PREFETCH_MULTIPLIER", "2")
    app = make_app()
    assert app.conf.broker_url == "redis://example:6380/3"
    assert app.conf.task_acks_late is True
    assert app.conf.worker_prefetch_multiplier == 2
    assert app.conf.broker_transport_options == {"global_keyprefix": "p:"}
    assert TASK_NAME in app.tasks
    # The module-level app is what `celery -A batchctl.demo.tasks` finds.
    assert demo_tasks.app.tasks[TASK_NAME] is demo_tasks.work


def test_enqueue_publishes_real_celery_messages_across_priority_lists(
    redis_server: RedisServer, redis_db: redis.Redis
) -> None:
    app = make_app(redis_server.url)
    ids = enqueue(app, "batch1", 200, seconds=0.5, payload_bytes=100, seed=1)
    assert len(ids) == len(set(ids)) == 200

    base = _messages(redis_db, "batch1")
    high = _messages(redis_db, f"batch1{PRIORITY_SEP}9")
    # kombu's layout: priority 0 in the bare list, 9 in its own list.
    assert len(base) + len(high) == 200 and len(base) > 50 and len(high) > 50
    assert {m["properties"]["priority"] for m in base} == {0}
    assert {m["properties"]["priority"] for m in high} == {9}
    # LPUSH: the newest at the head, so the tail of the bare list is the oldest there.
    assert [m["headers"]["id"] for m in reversed(base)] == [
        i for i in ids if i in {m["headers"]["id"] for m in base}
    ]
    msg = base[0]
    assert msg["headers"]["task"] == TASK_NAME
    assert msg["properties"]["delivery_info"]["routing_key"] == "batch1"
    args, kwargs, _ = json.loads(base64.b64decode(msg["body"]))
    assert args == [0.5] and kwargs == {"payload": "x" * 100}
    assert len({m["properties"]["delivery_tag"] for m in base + high}) == 200


def test_enqueue_honours_global_keyprefix(redis_server: RedisServer, redis_db: redis.Redis) -> None:
    app = make_app(redis_server.url, keyprefix="pfx:")
    enqueue(app, "batch2", 10, priorities=[0])
    assert redis_db.llen("pfx:batch2") == 10
    assert redis_db.llen("batch2") == 0


def test_enqueue_5000_is_fast(redis_server: RedisServer, redis_db: redis.Redis) -> None:
    app = make_app(redis_server.url)
    start = time.perf_counter()
    ids = enqueue(app, "batch3", 5000, seconds=0.01)
    elapsed = time.perf_counter() - start
    total = redis_db.llen("batch3") + redis_db.llen(f"batch3{PRIORITY_SEP}9")
    assert total == 5000 == len(set(ids))
    print(f"enqueued 5000 tasks in {elapsed:.2f}s ({5000 / elapsed:.0f}/s)")
    # ~1.1-1.4 s here (2 cores); unbuffered apply_async takes ~3.6 s. Loose bound for CI.
    assert elapsed < 10


def test_enqueue_rejects_bad_arguments(redis_server: RedisServer) -> None:
    app = make_app(redis_server.url)
    with pytest.raises(ValueError):
        enqueue(app, "batch1", -1)
    with pytest.raises(ValueError):
        enqueue(app, "batch1", 1, priorities=[])


class _FakePipe:
    def __init__(self, replies: list[object]) -> None:
        self.replies = replies

    def execute(self) -> list[object]:
        return self.replies

    def reset(self) -> None:
        pass


class _FakeChannel:
    def __init__(self, replies: list[object]) -> None:
        pipe = _FakePipe(replies)
        self.client = type("C", (), {"pipeline": lambda _self, transaction: pipe})()

    def conn_or_acquire(self, client: object = None) -> object:
        raise AssertionError("the class method must be shadowed while buffering")


def test_pipelined_publish_fails_loudly_on_unexpected_replies() -> None:
    """If kombu ever used the buffered client for a read, we must not carry on blindly."""
    channel = _FakeChannel(["OK"])
    producer = type("P", (), {"channel": channel})()
    with pytest.raises(RuntimeError, match="unexpected replies"), _pipelined_publish(producer):
        pass
    assert "conn_or_acquire" not in vars(channel)  # the patch is undone either way

    ok = _FakeChannel([1, 2])
    with _pipelined_publish(type("P", (), {"channel": ok})()) as flush:
        flush()


@pytest.mark.slow
def test_worker_records_completed_task_ids(
    redis_server: RedisServer, redis_db: redis.Redis, tmp_path: Path
) -> None:
    """A real worker runs the task; with a key prefix, both the queue and the done set use it."""
    app = make_app(redis_server.url, keyprefix="pfx:")
    ids = enqueue(app, "batch0", 20, seconds=0.01)
    with WorkerPool(
        broker_url=redis_server.url,
        run_dir=tmp_path,
        app="batchctl.demo.tasks",
        concurrency=2,
        keyprefix="pfx:",
    ) as act:
        act.set_replicas("batch0", 1)
        wait_for(lambda: done_count(redis_db, "batch0", "pfx:") == 20, timeout=20, what="done")
    assert done_ids(redis_db, "batch0", "pfx:") == set(ids)
    assert done_key("batch0", "pfx:") == "pfx:batchctl:demo:done:batch0"
    assert not redis_db.exists("batchctl:demo:done:batch0")
    # The worker kept to the prefix too: no unprefixed kombu keys appeared.
    assert not redis_db.exists("batch0", "unacked", "unacked_index")
