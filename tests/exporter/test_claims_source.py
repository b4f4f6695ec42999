"""Claims kept in a store other than the broker's Redis are read through its ClaimReader.

The exporter reads claims kept in the broker's Redis in the broker's own round trip;
any other store (`claims.store`) is read through the ClaimReader protocol at every
collection. Here the "other" store is a Redis claim store on a second server, so that a
claim written to the broker's database must NOT show: only the store is asked.
"""

from __future__ import annotations

import time

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from autoscaler.observations import observations
from batchctl.claims.redis_store import RedisClaimStore
from exporter.broker.redis.reader import RedisReader
from exporter.collect import InProcessSource
from tests.support.config import config_for
from tests.support.servers.redis import EmbeddedRedis, RedisServer


def test_claims_come_from_the_store_not_the_broker(
    redis_server: RedisServer, redis_db: redis.Redis, own_redis: EmbeddedRedis
) -> None:
    cfg = config_for(redis_server.url)
    now = time.time()
    RedisClaimStore(redis_db).claim("batch0", "mallory", "in the broker", 600, now)
    store = RedisClaimStore(redis.Redis(port=own_redis.port))
    store.claim("batch1", "alice", "in the store", 600, now)
    source = InProcessSource(cfg, RedisReader(cfg.broker), claims=store)
    try:
        snap = source.collect()
    finally:
        source.stop()
    assert snap.broker_up and snap.claims_error is None
    assert {q: c.holder for q, c in snap.claims.items()} == {"batch1": "alice"}
    obs = {o.queue: o for o in observations(snap, cfg, snap.claims, [], snap.taken_at)}
    assert obs["batch1"].claim is not None and obs["batch1"].data_ok


def test_a_store_that_does_not_answer_leaves_claims_unknown_and_the_autoscaler_holds(
    redis_server: RedisServer,
) -> None:
    cfg = config_for(redis_server.url)
    down = redis.Redis(port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    source = InProcessSource(cfg, RedisReader(cfg.broker), claims=RedisClaimStore(down))
    try:
        snap = source.collect()
    finally:
        source.stop()
    assert snap.broker_up and snap.claims == {}
    assert snap.claims_error is not None and "cannot reach" in snap.claims_error
    again = type(snap).from_json(snap.to_json())
    assert again.claims_error == snap.claims_error
    for o in observations(snap, cfg, {}, [], snap.taken_at):
        assert not o.data_ok and o.why.startswith("claims unknown: ")
