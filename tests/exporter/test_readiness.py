"""The exporter is ready without a scrape, with Redis up or down, and stays fresh alone."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from batchctl.config import Config, parse_config
from exporter.runtime import Running, start_exporter
from tests.support.http import get
from tests.support.metrics import sample
from tests.support.servers.redis import EmbeddedRedis, RedisServer
from tests.support.waits import wait_for


def cfg_for(url: str, refresh: float = 15.0) -> Config:
    return parse_config(
        {
            "broker": {"url": url, "timeout_seconds": 0.5},
            "kubernetes": {"enabled": False},
            # Every scrape collects: no reuse of a snapshot just taken.
            "exporter": {"refresh_interval_seconds": refresh, "snapshot_reuse_seconds": 0},
        },
        env={},
    )


@pytest.fixture
def running() -> Iterator[list[Running]]:
    started: list[Running] = []
    yield started
    for r in started:
        r.stop()


def test_ready_without_any_scrape(redis_server: RedisServer, running: list[Running]) -> None:
    r = start_exporter(cfg_for(redis_server.url), "127.0.0.1:0")
    running.append(r)
    # Only probes, never /metrics: the exporter's own first collection makes it ready.
    wait_for(lambda: get(r.url + "/readyz")[0] == 200, timeout=10, what="/readyz 200")
    snap = r.source.last
    assert snap is not None and snap.broker_up


def test_ready_with_redis_down(own_redis: EmbeddedRedis, running: list[Running]) -> None:
    url = own_redis.url
    own_redis.stop()
    r = start_exporter(cfg_for(url), "127.0.0.1:0")
    running.append(r)
    wait_for(lambda: get(r.url + "/readyz")[0] == 200, timeout=10, what="/readyz 200")
    code, _, body = get(r.url + "/metrics")
    assert code == 200 and sample(body, "celery_broker_up") == 0


def test_snapshot_stays_fresh_without_scrapes(
    redis_server: RedisServer, running: list[Running]
) -> None:
    r = start_exporter(cfg_for(redis_server.url, refresh=0.2), "127.0.0.1:0")
    running.append(r)
    first = wait_for(lambda: r.source.last, what="a first collection")
    assert first is not None
    taken = first.taken_at  # type: ignore[attr-defined]
    wait_for(
        lambda: r.source.last is not None and r.source.last.taken_at > taken,
        timeout=5,
        what="a second collection without a scrape",
    )


def test_scrapes_still_collect_at_scrape_time(
    redis_server: RedisServer, running: list[Running]
) -> None:
    # A long refresh interval: whatever a scrape shows, it collected it itself.
    r = start_exporter(cfg_for(redis_server.url, refresh=3600), "127.0.0.1:0")
    running.append(r)
    wait_for(lambda: r.source.last, what="the start-up collection")
    redis_server.client().lpush("batch2", "x")
    before = time.time()
    code, _, body = get(r.url + "/metrics")
    assert code == 200 and sample(body, "celery_queue_length", {"queue": "batch2"}) == 1
    last = r.source.last
    assert last is not None and last.taken_at >= before
