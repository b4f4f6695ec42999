"""The recent claim events on /status: read on page views only, escaped, never fatal."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from batchctl.claims import ClaimEvent, Work
from batchctl.claims.redis_store import RedisClaimStore
from exporter.status.claim_history import recent_events, render_history
from tests.support.config import config_for
from tests.support.exporter import serving
from tests.support.http import get
from tests.support.servers.redis import RedisServer

NOW = 1_800_000_000.0


@pytest.fixture
def base(redis_server: RedisServer, redis_db: redis.Redis) -> Iterator[str]:
    with serving(config_for(redis_server.url)) as (url, _):
        yield url


def test_status_shows_the_last_three_events_per_batch(base: str, redis_db: redis.Redis) -> None:
    store = RedisClaimStore(redis_db)
    now = time.time()
    store.take("batch0", "alice", "<b>reindex</b>", 3600, now - 50)
    for i in range(4):
        store.take("batch0", "alice", None, 3600 + i, now - 40 + i)
    store.take("batch1", "bob", "dedupe", 3600, now - 30)
    store.give_back("batch1", "bob", False, now - 20, work=Work(7, 1), drain=True)
    store.take("batch9", "carol", "not configured", 3600, now)  # not a configured batch

    code, _, page = get(base + "/status")
    assert code == 200
    history = page.split('id="claim-history"', 1)[1]
    rows = history.split("<tr data-queue=")[1:]
    assert [r.split('"')[1] for r in rows] == ["batch0"] * 3 + ["batch1"] * 2
    assert "draining" in rows[3] and "7 waiting, 1 in flight left" in rows[3]
    assert "&lt;b&gt;reindex&lt;/b&gt;" in history and "<b>reindex" not in history
    assert "batch9" not in history


def test_no_events_no_block_and_a_broker_down_leaves_it_out() -> None:
    assert render_history({}, NOW) == ""
    e = ClaimEvent("scaled", "batch1", NOW - 90, "alice", "alice", "p", "3 replicas for 30m")
    html = render_history({"batch1": [e]}, NOW)
    assert "1m30s ago" in html and "3 replicas for 30m" in html
    down = redis.Redis(port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    assert recent_events(RedisClaimStore(down), ["batch1"]) is None
