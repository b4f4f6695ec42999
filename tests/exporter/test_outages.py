"""Every outage is answered within broker.timeout_seconds, with celery_broker_up 0.

Real stalls, no mocks: sentinels that accept and never answer, a TLS port whose
handshake never starts, a Redis in DEBUG SLEEP, a host name that does not resolve.
Time limits here are correctness bounds (the configured timeout plus scheduling
slack on a shared 2-core machine), not speed measurements.
"""

from __future__ import annotations

import threading
import time
from contextlib import ExitStack

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from batchctl.brokerurl import connect
from batchctl.config import Config
from exporter.broker.redis.reader import RedisReader
from exporter.collect import InProcessSource
from exporter.snapshot import Snapshot
from tests.support.config import config_for
from tests.support.servers.network import closed_port, silent_listener
from tests.support.servers.redis import EmbeddedRedis
from tests.support.waits import wait_for

pytestmark = pytest.mark.integration

TIMEOUT = 0.6
SLACK = 0.4  # thread start-up and scheduling on a busy shared machine


def cfg_for(url: str, **broker: object) -> Config:
    return config_for(url, ["batch1"], broker={"timeout_seconds": TIMEOUT, **broker})


def timed_collect(cfg: Config, c: InProcessSource | None = None) -> tuple[Snapshot, float]:
    c = c or InProcessSource(cfg, RedisReader(cfg.broker))
    t0 = time.monotonic()
    snap = c.collect()
    return snap, time.monotonic() - t0


def test_every_sentinel_unreachable() -> None:
    with ExitStack() as stack:
        ports = [stack.enter_context(silent_listener()) for _ in range(3)]
        url = ";".join(f"sentinel://:pw-1234@127.0.0.1:{p}" for p in ports)
        cfg = cfg_for(url, sentinel_kwargs={"password": "sentinel-pw", "socket_timeout": 30})
        snap, took = timed_collect(cfg)
        assert not snap.broker_up and took < TIMEOUT + SLACK, took
        # Bounded where it happens, too: the three sentinels share the time budget.
        t0 = time.monotonic()
        with pytest.raises(redis.RedisError):
            connect(cfg.broker).ping()
        assert time.monotonic() - t0 < TIMEOUT + SLACK
    refused = ";".join(f"sentinel://127.0.0.1:{closed_port()}" for _ in range(2))
    snap, took = timed_collect(cfg_for(refused))
    assert not snap.broker_up and "MasterNotFound" in (snap.broker_error or "")
    assert "pw-1234" not in (snap.broker_error or "")


def test_a_tls_handshake_that_stalls() -> None:
    with silent_listener() as port:
        snap, took = timed_collect(cfg_for(f"rediss://127.0.0.1:{port}/0?ssl_cert_reqs=none"))
    assert not snap.broker_up and took < TIMEOUT + SLACK, took


def test_a_queued_connection_never_accepted() -> None:
    # The listener's backlog takes the SYN but nobody calls accept(): half-open.
    with silent_listener(accept=False) as port:
        snap, took = timed_collect(cfg_for(f"redis://127.0.0.1:{port}/0"))
    assert not snap.broker_up and took < TIMEOUT + SLACK, took


def test_a_host_name_that_does_not_resolve() -> None:
    snap, took = timed_collect(cfg_for("redis://:pw-5678@batchctl-test.invalid:6379/0"))
    assert not snap.broker_up and took < TIMEOUT + SLACK, took
    assert "pw-5678" not in (snap.broker_error or "")


def test_redis_in_debug_sleep_then_back(own_redis: EmbeddedRedis) -> None:
    cfg = cfg_for(own_redis.url)
    c = InProcessSource(cfg, RedisReader(cfg.broker))
    assert c.collect().broker_up
    sleeper = threading.Thread(
        target=lambda: own_redis.client().execute_command("DEBUG", "SLEEP", 2.5), daemon=True
    )
    sleeper.start()
    wait_for(lambda: _blocked(own_redis), timeout=5, what="redis asleep")
    snap, took = timed_collect(cfg, c)
    assert not snap.broker_up and took < TIMEOUT + SLACK, took
    # The abandoned read still waits for Redis: the next scrape is not held up by it.
    snap, took = timed_collect(cfg, c)
    assert not snap.broker_up and took < TIMEOUT + SLACK, took
    sleeper.join(10)
    wait_for(lambda: c.collect().broker_up, timeout=10, what="recovery")


def _blocked(server: EmbeddedRedis) -> bool:
    probe = redis.Redis(
        port=server.port,
        socket_timeout=0.1,
        socket_connect_timeout=0.1,
        retry=Retry(NoBackoff(), 0),
    )
    try:
        probe.ping()
        return False
    except redis.TimeoutError:
        return True
    finally:
        probe.close()
