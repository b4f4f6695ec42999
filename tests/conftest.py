"""The suite's fixtures and hooks; helpers are in tests/support/, and no test module
imports this file.

- Redis: every test gets a database of its own on the session's server (`redis_server`,
  `redis_db`), or a server of its own (`own_redis`) when it stops and restarts Redis.
- RabbitMQ: every test gets a virtual host of its own, with a monitoring user, on the
  session's node (`rabbitmq`), or a node of its own (`own_rabbitmq`) to stop and start.
- The inner loop: tests are marked `integration` by the fixtures they use, and the others
  may start no process and no server (tests/support/isolation.py).
- The run: it fails when it collects fewer tests than MINIMUM_TESTS or leaves a thread
  running at its end. Under CI=true a missing tool fails instead of skipping.
"""

from __future__ import annotations

import itertools
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import redis

from tests.support.isolation import (
    servers_forbidden_unless_integration,
    starts_servers,
    uses_servers,
)
from tests.support.properties import INNER_LOOP, INNER_LOOP_DEFAULT
from tests.support.servers.rabbitmq import RabbitNode, RabbitVhost, drop_vhost, new_vhost
from tests.support.servers.redis import DATABASES, EmbeddedRedis, RedisDatabase

if INNER_LOOP:
    hypothesis.settings.register_profile("inner-loop", max_examples=INNER_LOOP_DEFAULT)
    hypothesis.settings.load_profile("inner-loop")


# The suite's size. A run of the whole suite (no paths given; -m and -k deselect, they do
# not shrink it) that collects fewer tests fails before running any: a test file that
# stopped being collected (renamed without its test_ prefix, say) or a suite that
# collects nothing (pytest's exit 5) never passes as green. Raise it with the tests you
# add; lower it only for tests removed on purpose.
MINIMUM_TESTS = 1855
_deselected: list[int] = [0]


def pytest_deselected(items: list[pytest.Item]) -> None:
    _deselected[0] += len(items)


def _too_few(collected: int) -> None:
    if collected < MINIMUM_TESTS:
        pytest.exit(
            f"collected {collected} tests, fewer than the suite's {MINIMUM_TESTS} "
            "(MINIMUM_TESTS in tests/conftest.py): a test module is no longer collected",
            returncode=pytest.ExitCode.TESTS_FAILED,
        )


def pytest_collection_finish(session: pytest.Session) -> None:
    # Under pytest-xdist (`make test`) the controller counts what its workers collected
    # (below): an exit inside a worker would be an internal error, not a clear failure.
    if hasattr(session.config, "workerinput"):
        return
    if session.config.args_source is not pytest.Config.ArgsSource.TESTPATHS:
        return
    _too_few(len(session.items) + _deselected[0])


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node: Any, ids: list[str]) -> None:
    """xdist's controller: each worker collects the whole suite; `ids` are what it kept.
    Only a run that deselects nothing is counted here (`make test`); with -m or -k the
    workers do not say how many they deselected."""
    config = node.config
    if config.args_source is not pytest.Config.ArgsSource.TESTPATHS:
        return
    if config.option.markexpr or config.option.keyword:
        return
    _too_few(len(ids))


# The inner loop: tests that start no server and no process (tests/support/isolation.py).
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if uses_servers(item):
            item.add_marker(pytest.mark.integration)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    with servers_forbidden_unless_integration(item):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    with servers_forbidden_unless_integration(item):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Iterator[None]:
    with servers_forbidden_unless_integration(item):
        return (yield)


@pytest.fixture(scope="session")
@starts_servers
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
@starts_servers
def own_redis() -> Iterator[EmbeddedRedis]:
    """A Redis server of this test's own, free to be killed and restarted."""
    with EmbeddedRedis() as server:
        yield server


@pytest.fixture(scope="session")
@starts_servers
def rabbitmq_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RabbitNode]:
    """The session's RabbitMQ node (Debian's rabbitmq-server; boots in ~6-15 s)."""
    with RabbitNode(tmp_path_factory.mktemp("rabbitmq")) as node:
        yield node


@pytest.fixture
def rabbitmq(rabbitmq_node: RabbitNode) -> Iterator[RabbitVhost]:
    """A virtual host of this test's own on the session's node, deleted afterwards with
    its queues, and a monitoring user of its own."""
    vhost = new_vhost(rabbitmq_node)
    try:
        yield vhost
    finally:
        drop_vhost(vhost)


@pytest.fixture
@starts_servers
def own_rabbitmq(tmp_path: Path) -> Iterator[RabbitNode]:
    """A RabbitMQ node of this test's own, free to be stopped and started again."""
    with RabbitNode(tmp_path / "rabbitmq") as node:
        yield node


# -- the end of the run ---------------------------------------------------------------
#
# A thread a test leaves running may still be inside a library call when the interpreter
# finalizes; Python 3.11 ends such a daemon thread with pthread_exit as soon as it wants
# the GIL back, and that aborts the whole process (SIGABRT, "no Python frame") when the
# thread's C stack cannot be unwound: the kubernetes client's calls run through
# pydantic-core's Rust frames (autoscaler/leader.py says more). So the threads the tests
# start end with them, and a run that leaves one running at its end fails, naming it.
THREADS_GRACE_SECONDS = 10.0


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    deadline = time.monotonic() + THREADS_GRACE_SECONDS
    left = []
    for thread in threading.enumerate():
        if thread is not threading.main_thread():
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                left.append(thread)
    if not left:
        return
    frames = sys._current_frames()
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_sep("=", "threads the tests left running", red=True)
        for thread in left:
            frame = frames.get(thread.ident or 0)
            where = traceback.format_stack(frame, limit=8) if frame is not None else []
            reporter.write_line(f"{thread!r}\n{''.join(where)}")
    if session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
