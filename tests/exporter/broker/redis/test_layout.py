"""kombu's layout options (`sep`, priority steps), the oldest-message age across priority
lists and restarts, and the one key the exporter writes: real Celery producers, real Redis."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest
import redis
from celery import Celery

from batchctl.config import Config, parse_config
from batchctl.demo.tasks import enqueue, make_app
from exporter.broker.redis.firstseen import AGES_KEY
from exporter.broker.redis.lists import HOT_READS, VERIFY_EVERY
from exporter.broker.redis.reader import RedisReader
from exporter.collect import InProcessSource
from tests.support.config import config_for
from tests.support.messages import envelope
from tests.support.servers.redis import RedisServer


def cfg_for(url: str, **broker: object) -> Config:
    return config_for(url, ["batch1"], broker=broker)


def source(cfg: Config, clock: list[float]) -> InProcessSource:
    return InProcessSource(cfg, RedisReader(cfg.broker), clock=lambda: clock[0])


def producer(url: str, **transport: object) -> Celery:
    app = make_app(url)
    app.conf.broker_transport_options = transport
    return app


SEP_APP = {"priority_steps": list(range(10)), "sep": ":", "queue_order_strategy": "priority"}


def test_kombu_sep_option(redis_server: RedisServer, redis_db: redis.Redis) -> None:
    # Celery's routing docs' example: ten steps, ':' as separator.
    app = producer(redis_server.url, **SEP_APP)
    enqueue(app, "batch1", 55, seconds=0, priorities=list(range(10)), seed=11)
    enqueue(app, "adhoc", 4, seconds=0, priorities=[7])
    assert redis_db.exists("batch1:9")
    assert redis_db.sismember("_kombu.binding.batch1", "batch1::batch1")

    cfg = cfg_for(redis_server.url, sep=":", priority_steps=list(range(10)))
    snap = source(cfg, [0.0]).collect()
    q = snap.queue("batch1")
    assert q is not None and q.waiting == 55
    lists = ["batch1", *(f"batch1:{s}" for s in range(1, 10))]
    expect = {s: n for s, key in enumerate(lists) if (n := redis_db.llen(key))}
    assert dict(q.priority_lengths) == expect
    adhoc = snap.queue("adhoc")  # discovered through binding members joined with ':'
    assert adhoc is not None and adhoc.waiting == 4 and adhoc.priority_lengths == {7: 4}
    assert snap.queues_skipped.get("malformed_binding") == 0
    # The default separator reads nothing of this app: the option is honoured, not guessed.
    plain = source(cfg_for(redis_server.url, priority_steps=list(range(10))), [0.0]).collect()
    assert plain.queue("batch1").waiting == redis_db.llen("batch1")  # type: ignore[union-attr]
    assert plain.queue("adhoc") is None
    # ... and says why: kombu could not route by those members either.
    assert plain.queues_skipped["malformed_binding"] > 0


def _publish(app: Celery, n: int, priority: int) -> None:
    enqueue(app, "batch1", n, seconds=0, priorities=[priority])


def test_age_is_the_oldest_message_across_priority_lists(
    redis_server: RedisServer, redis_db: redis.Redis
) -> None:
    app = producer(redis_server.url)
    clock = [1000.0]
    c = source(cfg_for(redis_server.url), clock)
    _publish(app, 3, 9)  # low priority: consumers take it last
    assert c.collect().queue("batch1").oldest_age_seconds == 0.0  # type: ignore[union-attr]
    for _ in range(10):  # high-priority traffic keeps flowing through the base list
        clock[0] += 2
        _publish(app, 2, 0)
        c.collect()
        redis_db.rpop("batch1")  # a worker takes one (the test, not batchctl)
        redis_db.rpop("batch1")
        snap = c.collect()
        assert snap.queue("batch1").oldest_age_seconds == clock[0] - 1000.0  # type: ignore[union-attr]
    assert snap.queue("batch1").priority_lengths == {9: 3}  # type: ignore[union-attr]


def test_age_survives_a_restart(redis_server: RedisServer, redis_db: redis.Redis) -> None:
    app = producer(redis_server.url)
    clock = [5000.0]
    cfg = cfg_for(redis_server.url)
    first = source(cfg, clock)
    _publish(app, 700, 0)  # a backlog arrives at once
    first.collect()
    clock[0] += 120
    first.collect()
    first.stop()  # the pod is replaced
    clock[0] += 60
    # Unchanged tail: the new process knows exactly when it was first seen.
    second = source(cfg, clock)
    assert second.collect().queue("batch1").oldest_age_seconds == 180.0  # type: ignore[union-attr]
    second.stop()
    # Workers took 100 while no exporter ran: the new tail was never seen, but it was
    # pushed before the head, which was first seen at 5000.
    for _ in range(100):
        redis_db.rpop("batch1")
    clock[0] += 60
    third = source(cfg, clock)
    q = third.collect().queue("batch1")
    assert q is not None and q.waiting == 600 and q.oldest_age_seconds == 240.0
    third.stop()
    assert 0 < redis_db.ttl(AGES_KEY) <= 24 * 3600
    redis_db.delete("batch1")
    fourth = source(cfg, clock)
    fourth.collect()
    fourth.stop()
    assert not redis_db.hlen(AGES_KEY)  # an empty list's entry goes with it


def test_every_queues_age_survives_a_restart_and_a_wrong_type_starts_afresh(
    redis_server: RedisServer, redis_db: redis.Redis
) -> None:
    """Three queues' first-seen times read back by a new process; a key of another type
    under the name only loses the ages (paging: the test below)."""
    app = producer(redis_server.url)
    clock = [100.0]
    cfg = parse_config(
        {
            "broker": {"url": redis_server.url},
            "kubernetes": {"enabled": False},
            "batches": [{"queue": f"batch{i}", "deployment": f"celery-batch{i}"} for i in range(3)],
        },
        env={},
    )
    for i in range(3):
        enqueue(app, f"batch{i}", 3, seconds=0, priorities=[0, 9], seed=i)
    first = source(cfg, clock)
    first.collect()
    clock[0] += 50
    first.collect()
    first.stop()
    lists = [k for i in range(3) for k in (f"batch{i}", f"batch{i}\x06\x169") if redis_db.llen(k)]
    assert redis_db.hlen(AGES_KEY) == len(lists) >= 3  # one field per non-empty list
    clock[0] += 10
    second = source(cfg, clock)
    snap = second.collect()
    second.stop()
    assert [snap.queue(f"batch{i}").oldest_age_seconds for i in range(3)] == [60.0] * 3  # type: ignore[union-attr]
    redis_db.delete(AGES_KEY)
    redis_db.set(AGES_KEY, "not a hash")
    third = source(cfg, clock)
    snap = third.collect()
    third.stop()
    assert (
        snap.broker_up
        and [snap.queue(f"batch{i}").oldest_age_seconds for i in range(3)] == [0.0] * 3
    )  # type: ignore[union-attr]


READS = {
    "LLEN", "LINDEX", "LRANGE", "ZRANGEBYSCORE", "HKEYS", "HGET", "HGETALL", "HSCAN", "INFO",
    "MEMORY", "SCAN", "SMEMBERS", "EVALSHA", "SCRIPT", "PING", "CLIENT", "SELECT", "HELLO", "AUTH",
}  # fmt: skip
OWN_WRITES = {"HSET", "HDEL", "PEXPIRE"}


def test_the_exporter_writes_only_its_own_key(
    redis_server: RedisServer, redis_db: redis.Redis
) -> None:
    app = producer(redis_server.url, global_keyprefix="cl:")
    _publish(app, 20, 0)
    _publish(app, 5, 9)
    cfg = cfg_for(redis_server.url, global_keyprefix="cl:", memory_sample_interval_seconds=0)
    before = {k: redis_db.dump(k) for k in redis_db.keys("*")}
    seen: list[list[Any]] = []
    monitor_client = redis_server.client()
    stop = threading.Event()

    def watch() -> None:
        with monitor_client.monitor() as m:
            for event in m.listen():
                if stop.is_set():
                    return
                if event.get("db") == redis_server.db:  # type: ignore[attr-defined]
                    seen.append(event["command"].split(" "))

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    clock = [10.0]
    for _ in range(2):  # two processes, one after the other
        c = source(cfg, clock)
        for _ in range(6):
            clock[0] += 5
            c.collect()
            redis_db.rpop("cl:batch1")  # consumers move on
        c.stop()
    redis_db.ping()
    stop.set()
    redis_db.set("cl:wake-the-monitor", 1)
    t.join(5)
    redis_db.delete("cl:wake-the-monitor")
    commands = Counter(cmd[0].strip('"').upper() for cmd in seen)
    writes = [cmd for cmd in seen if cmd[0].strip('"').upper() not in READS]
    assert commands["EVALSHA"] and commands["LLEN"] and commands["HSET"]
    assert {c[0].strip('"').upper() for c in writes} <= OWN_WRITES | {"SET", "DEL", "RPOP"}
    ours = [c for c in writes if c[0].strip('"').upper() in OWN_WRITES]
    assert ours and all(c[1].strip('"') == "cl:" + AGES_KEY for c in ours)
    # Every key of kombu's is exactly as it was, but for what the test's worker took.
    after = {k: redis_db.dump(k) for k in redis_db.keys("*") if not k.endswith(b"first_seen")}
    assert set(after) == set(before)
    assert all(after[k] == v for k, v in before.items() if k != b"cl:batch1")


def test_a_push_and_a_pop_between_scrapes_are_seen(
    redis_server: RedisServer, redis_db: redis.Redis
) -> None:
    # The length stays the same, so the script skips the list's ends, except when the
    # list is due for its check (every VERIFY_EVERY scrapes, or every scrape while it
    # moved recently): the push is dated by the read that saw it, never earlier.
    app = producer(redis_server.url)
    clock = [0.0]
    c = source(cfg_for(redis_server.url), clock)
    _publish(app, 3, 0)
    for _ in range(HOT_READS + 2):  # long enough for the list to be idle ("not hot")
        clock[0] += 10
        assert c.collect().queue("batch1").oldest_age_seconds == clock[0] - 10  # type: ignore[union-attr]
    redis_db.rpop("batch1")  # a worker takes the oldest...
    _publish(app, 1, 0)  # ... and a producer adds one: still 3
    pushed_at = clock[0]
    ages = []
    for _ in range(VERIFY_EVERY):
        clock[0] += 10
        # The two left of the first three were counted at 10 s: the age is theirs.
        ages.append(c.collect().queue("batch1").oldest_age_seconds)  # type: ignore[union-attr]
    assert ages == [clock[0] - 10 * (VERIFY_EVERY - 1 - i) - 10 for i in range(VERIFY_EVERY)]
    redis_db.rpop("batch1")
    redis_db.rpop("batch1")  # only the new one is left
    clock[0] += 10
    age = c.collect().queue("batch1").oldest_age_seconds  # type: ignore[union-attr]
    # Seen within VERIFY_EVERY reads of its push: a lower bound that far from the truth.
    assert clock[0] - pushed_at - 10 * VERIFY_EVERY <= age <= clock[0] - pushed_at


def _push_lists(db: redis.Redis, n: int) -> list[str]:
    """`n` queues of one list each, two messages (kombu's envelope shape) per list."""
    queues = [f"q{i:04d}" for i in range(n)]
    pipe = db.pipeline(transaction=False)
    for q in queues:
        pipe.lpush(q, envelope(q), envelope(q))
    pipe.execute()
    return queues


def test_first_seen_writes_that_fail_are_sent_again(
    redis_server: RedisServer, redis_db: redis.Redis, monkeypatch: Any
) -> None:
    """Writes go out a few per read; a read whose pipeline fails puts its writes back,
    so every list ends in the hash."""
    import exporter.broker.redis.firstseen

    monkeypatch.setattr(exporter.broker.redis.firstseen, "WRITES_PER_READ", 3)
    queues = _push_lists(redis_db, 8)
    reader = RedisReader(cfg_for(redis_server.url).broker)
    reader.read(queues, 100.0)  # reads the ends: 8 writes queued
    real_run, failed = reader._run, []

    def run_once_failing(pipe: Any) -> list[Any]:
        if not failed:
            failed.append(len(pipe.command_stack))
            raise redis.ConnectionError("cut")
        return real_run(pipe)

    monkeypatch.setattr(reader, "_run", run_once_failing)
    with pytest.raises(redis.ConnectionError):
        reader.read(queues, 101.0)
    assert failed and redis_db.hlen(AGES_KEY) == 0
    reader.read(queues, 102.0)
    assert redis_db.hlen(AGES_KEY) == 3  # at most WRITES_PER_READ per read
    reader.close()  # the rest on shutdown
    assert sorted(redis_db.hkeys(AGES_KEY)) == sorted(q.encode() for q in queues)


def test_a_restart_reads_every_page_and_retries_after_an_error(
    redis_server: RedisServer, redis_db: redis.Redis, monkeypatch: Any
) -> None:
    """300 fields: a real hash table, read in several HSCAN pages. An error on a page
    (BUSY: someone's long script) fails that read; the next one reads the whole hash,
    and every list keeps its first-seen time."""
    import exporter.broker.redis.firstseen

    monkeypatch.setattr(exporter.broker.redis.firstseen, "SEED_PAGE", 50)
    # More fields than Redis keeps in a compact (ziplist) hash, which HSCAN returns whole.
    queues = _push_lists(redis_db, 600)
    cfg = cfg_for(redis_server.url)
    first = RedisReader(cfg.broker)
    first.read(queues, 100.0)
    first.close()
    assert redis_db.hlen(AGES_KEY) == 600

    second = RedisReader(cfg.broker)
    real_hscan, pages = second.client.hscan, []

    def hscan_busy_on_page_3(*args: Any, **kwargs: Any) -> Any:
        pages.append(args)
        if len(pages) == 3:
            raise redis.ResponseError("BUSY Redis is busy running a script")
        return real_hscan(*args, **kwargs)

    monkeypatch.setattr(second.client, "hscan", hscan_busy_on_page_3)
    with pytest.raises(redis.ResponseError, match="BUSY"):
        second.read(queues, 160.0)
    read = second.read(queues, 160.0)
    assert len(pages) > 4  # several pages, the failed one read again
    assert {r.oldest_seen for r in read.reads} == {100.0}
    second.close()
