"""Hostile content never fails a scrape: names that are not UTF-8, malformed binding
members, envelopes that are not kombu's, keys of other types, a broken `unacked`."""

from __future__ import annotations

import json
import uuid

import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batchctl.config import Config, parse_config
from exporter.broker.redis.reader import RedisReader
from exporter.collect import InProcessSource
from exporter.http.exposition import render_snapshot
from exporter.snapshot import Snapshot
from exporter.status.page import render_status
from tests.support.config import config_for
from tests.support.messages import envelope
from tests.support.metrics import sample
from tests.support.servers.redis import RedisServer

SEP = b"\x06\x16"


def cfg_for(url: str) -> Config:
    return config_for(url, ["batch1"], broker={"memory_sample_interval_seconds": 0})


def bind(db: redis.Redis, exchange: bytes, queue: bytes, routing_key: bytes | None = None) -> None:
    db.sadd(b"_kombu.binding." + exchange, (routing_key or queue) + SEP + SEP + queue)


def collect_everything(cfg: Config) -> Snapshot:
    """One collection, then every output built from it: none of them may fail."""
    snap = InProcessSource(cfg, RedisReader(cfg.broker)).collect()
    assert snap.broker_up, snap.broker_error
    render_snapshot(snap, version="v", kubernetes_enabled=False).encode("utf-8")
    render_snapshot(snap, version="v", kubernetes_enabled=False, openmetrics=True).encode()
    render_status(snap, (100, 500, 1000), 5).encode("utf-8")
    json.dumps(snap.to_json()).encode("utf-8")
    return snap


def test_names_that_are_not_utf8(redis_server: RedisServer, redis_db: redis.Redis) -> None:
    raw = b"reindex-\xff\xfe"
    bind(redis_db, raw, raw)
    redis_db.lpush(raw, *[envelope("x") for _ in range(3)])
    redis_db.lpush(raw + SEP + b"9", envelope("x"))
    # A real queue already named like the escaped form keeps its name.
    bind(redis_db, b"taken", b"q\\xff")
    bind(redis_db, b"other", b"q\xff")
    redis_db.lpush(b"q\\xff", envelope("q"))
    bind(redis_db, b"long", b"L" * 5000)
    redis_db.sadd(b"_kombu.binding.junk", b"no separators", b"a" + SEP + b"b" + SEP)
    # In flight, routed by a binding whose routing key is not UTF-8 either.
    tag = str(uuid.uuid4())
    redis_db.hset(b"unacked", tag, json.dumps([{"x": 1}, "", "placeholder"]).replace(
        '"placeholder"', '"reindex-\\u00ff"').encode())  # fmt: skip
    redis_db.hset(b"unacked", b"\xff-not-a-tag", b"\x00\x01 not json at all")
    snap = collect_everything(cfg_for(redis_server.url))
    q = snap.queue("reindex-\\xff\\xfe")
    assert q is not None and q.waiting == 4 and q.priority_lengths == {0: 3, 9: 1}
    taken = snap.queue("q\\xff")
    assert taken is not None and taken.waiting == 1
    assert snap.queues_skipped == {
        "escaped_name_taken": 1,
        "malformed_binding": 2,
        "name_too_long": 1,
    }
    text = render_snapshot(snap, version="v", kubernetes_enabled=False)
    assert sample(text, "celery_queue_length", {"queue": "reindex-\\xff\\xfe"}) == 4
    assert sample(text, "celery_exporter_queues_skipped", {"reason": "escaped_name_taken"}) == 1


def test_in_flight_messages_of_a_non_ascii_queue(
    redis_server: RedisServer, redis_db: redis.Redis
) -> None:
    # kombu stores the route with json.dumps: 'café' is written 'caf\\u00e9'.
    name = "café-☃"
    bind(redis_db, name.encode(), name.encode())
    redis_db.lpush(name.encode(), envelope(name))
    for _ in range(3):
        tag = str(uuid.uuid4())
        redis_db.hset("unacked", tag, json.dumps([json.loads(envelope(name)), name, name]))
    cfg = parse_config(
        {"broker": {"url": redis_server.url}, "kubernetes": {"enabled": False}, "batches": []},
        env={},
    )
    q = collect_everything(cfg).queue(name)
    assert q is not None and q.waiting == 1 and q.unacked == 3


def test_a_broken_unacked_and_claims(redis_server: RedisServer, redis_db: redis.Redis) -> None:
    redis_db.lpush(b"batch1", envelope("batch1"), envelope("batch1"))
    redis_db.set(b"unacked", b"not a hash")
    redis_db.hset(b"batchctl:claim:batch1", mapping={b"holder": b"\xff\xfe", b"expires": b"soon"})
    snap = collect_everything(cfg_for(redis_server.url))
    assert snap.queue("batch1").waiting == 2  # type: ignore[union-attr]
    assert snap.queue("batch1").unacked == 0  # type: ignore[union-attr]


names = st.binary(min_size=1, max_size=12).filter(lambda b: not b.startswith(b"batch1"))
members = st.one_of(
    st.binary(max_size=40),
    st.tuples(st.binary(max_size=8), names).map(lambda t: t[0] + SEP + SEP + t[1]),
)
values = st.one_of(
    st.binary(max_size=600),
    st.builds(lambda n: envelope("x", tag=n.decode("latin-1")), st.binary(max_size=30)),
    st.just(b'{"properties": {"delivery_tag": 17}}'),
    st.just(b'"delivery_tag": "' * 50),
)
kinds = st.sampled_from(["list", "string", "hash", "set", "zset"])


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    good=st.integers(0, 30),
    good_priority=st.integers(0, 6),
    bindings=st.lists(st.tuples(st.binary(max_size=10), members), max_size=12),
    junk=st.lists(
        st.tuples(names, st.integers(0, 9), kinds, st.lists(values, min_size=1, max_size=4)),
        max_size=12,
    ),
    unacked=st.lists(st.tuples(st.binary(min_size=1, max_size=20), values), max_size=8),
)  # fmt: skip
def test_random_content_never_fails_a_scrape(
    redis_server: RedisServer,
    redis_db: redis.Redis,
    good: int,
    good_priority: int,
    bindings: list[tuple[bytes, bytes]],
    junk: list[tuple[bytes, int, str, list[bytes]]],
    unacked: list[tuple[bytes, bytes]],
) -> None:
    redis_db.flushdb()
    bind(redis_db, b"batch1", b"batch1")
    if good:
        redis_db.lpush(b"batch1", *[envelope("batch1") for _ in range(good)])
    if good_priority:
        redis_db.lpush(b"batch1" + SEP + b"9", *[envelope("batch1") for _ in range(good_priority)])
    for exchange, member in bindings:
        redis_db.sadd(b"_kombu.binding." + exchange, member)
    for name, step, kind, vals in junk:
        bind(redis_db, b"j", name)
        key = name + SEP + str(step).encode() if step else name
        redis_db.delete(key)
        if kind == "list":
            redis_db.rpush(key, *vals)
        elif kind == "string":
            redis_db.set(key, vals[0])
        elif kind == "hash":
            redis_db.hset(key, mapping={v[:8] or b"f": v for v in vals})
        elif kind == "set":
            redis_db.sadd(key, *vals)
        else:
            redis_db.zadd(key, {v: 1.0 for v in vals})
    for tag, value in unacked:
        redis_db.hset(b"unacked", tag, value)
    snap = collect_everything(cfg_for(redis_server.url))
    q = snap.queue("batch1")
    assert q is not None
    assert q.waiting == good + good_priority
    assert dict(q.priority_lengths) == {s: n for s, n in ((0, good), (9, good_priority)) if n}


def test_skips_are_logged_once_per_reason_per_hour(
    redis_server: RedisServer, redis_db: redis.Redis
) -> None:
    from structlog.testing import capture_logs

    redis_db.sadd(b"_kombu.binding.junk", b"no separators")
    bind(redis_db, b"long", b"L" * 5000)
    cfg = cfg_for(redis_server.url)
    reader = RedisReader(cfg.broker)
    with capture_logs() as logs:
        for _ in range(5):  # every discovery, as the background loop runs it
            reader.discover()
    skipped = [e for e in logs if e["event"] == "queues skipped"]
    assert sorted(e["reason"] for e in skipped) == ["malformed_binding", "name_too_long"]
    assert all(e["count"] == 1 for e in skipped)
