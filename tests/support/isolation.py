"""The inner loop's promise: a test not marked `integration` starts no process and no server.

A test is `integration` when it uses a fixture declared with `@starts_servers` (directly
or through other fixtures: tests/conftest.py marks it at collection), or when its module
or itself carries `pytest.mark.integration` because it starts them in its own body.
Every other test runs its setup, call and teardown under `forbid_servers`: one that starts
a process (Redis, a Celery worker, promtool, kubectl, Chromium, `batchctl`, git...) or
listens on a socket (the fake API server, an exporter, any HTTP server) fails at once,
naming what it started, instead of quietly slowing the inner loop (`make test-fast`,
`pytest -m "not integration"`) down.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
from collections.abc import Callable, Iterator
from typing import Any, NoReturn, TypeVar

import pytest

F = TypeVar("F", bound=Callable[..., Any])


def starts_servers(fixture_function: F) -> F:
    """Declare that a fixture starts a server or a process; put it under @pytest.fixture.
    Every test that uses the fixture is marked `integration`."""
    fixture_function.starts_servers = True  # type: ignore[attr-defined]
    return fixture_function


def uses_servers(item: pytest.Item) -> bool:
    """Whether any fixture `item` uses (its whole closure) is declared `starts_servers`."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return False
    return any(
        getattr(d.func, "starts_servers", False)
        for defs in info.name2fixturedefs.values()
        for d in defs
    )


def forbid_servers(monkeypatch: pytest.MonkeyPatch, nodeid: str) -> None:
    """Make starting a process or listening on a socket fail the test `nodeid`."""

    def refuse(what: str) -> NoReturn:
        # pytest.fail raises a BaseException: code under test that catches Exception
        # (a retry loop, a "log and carry on") cannot swallow it.
        pytest.fail(
            f"{nodeid} is not marked integration, yet it {what}. Start it in a fixture "
            "declared @starts_servers (tests.support.isolation), or mark the test or its "
            "module: pytestmark = pytest.mark.integration",
            pytrace=True,
        )

    def execute_child(self: subprocess.Popen[Any], args: Any, *rest: Any, **kw: Any) -> None:
        refuse(f"started a process: {args!r}")

    def listen(self: socket.socket, *args: Any) -> None:
        refuse(f"listened on {self.getsockname()!r}")

    monkeypatch.setattr(subprocess.Popen, "_execute_child", execute_child)
    monkeypatch.setattr(socket.socket, "listen", listen)


@contextlib.contextmanager
def servers_forbidden_unless_integration(item: pytest.Item) -> Iterator[None]:
    """Around one phase (setup, call, teardown) of `item`: the guard, unless it is marked."""
    if item.get_closest_marker("integration") is not None:
        yield
        return
    patch = pytest.MonkeyPatch()
    forbid_servers(patch, item.nodeid)
    try:
        yield
    finally:
        patch.undo()
