"""Exit codes that say what happened: a contradictory release, errors the broker answered
(data or config problems, not "cannot reach"), and a watch whose broker is down at the end."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from click.testing import CliRunner

from batchctl.claims.redis_store import RedisClaimStore
from batchctl.cli import cli
from exporter.snapshot import Snapshot
from tests.support.cli import strict
from tests.support.servers.redis import EmbeddedRedis, RedisServer


def test_release_drain_force_on_ones_own_claim_is_refused(run, redis_db: redis.Redis) -> None:  # type: ignore[no-untyped-def]
    assert run("claim", "batch1", "--purpose", "p").exit_code == 0
    redis_db.lpush("batch1", b"{}")
    r = run("release", "batch1", "--drain", "--force")
    assert r.exit_code == 2, r.output
    assert "--drain and --force contradict each other" in r.stderr
    assert RedisClaimStore(redis_db).get("batch1") is not None  # nothing changed
    # Someone else's claim: --force says "not mine", and --drain drains it.
    r = run("release", "batch1", "--drain", "--force", "--reason", "r", env={"USER": "bob"})
    assert r.exit_code == 0 and "batch1 is draining" in r.stdout, r.output


def test_wrong_types_are_data_problems_not_unreachable(run, redis_db: redis.Redis) -> None:  # type: ignore[no-untyped-def]
    redis_db.set("batchctl:claim:batch1", "a string")
    redis_db.set("batchctl:history", "a string")
    for args in (
        ("claim", "batch1", "--purpose", "p"),
        ("release", "batch1"),
        ("history",),
        ("history", "-o", "json"),
    ):
        r = run(*args)
        assert r.exit_code == 1, (args, r.output)
        assert "cannot reach" not in r.output and "Traceback" not in r.output
        assert "unexpected data in the broker" in r.output and "WRONGTYPE" in r.output


def test_a_database_the_server_lacks_is_a_config_error(run, redis_server: RedisServer) -> None:  # type: ignore[no-untyped-def]
    url = f"redis://127.0.0.1:{redis_server.port}/999"
    for args in (("status",), ("history",), ("claim", "batch1", "--purpose", "p", "-o", "json")):
        r = run(*args, env={"BATCHCTL_BROKER_URL": url})
        assert r.exit_code == 2, (args, r.output)
        assert "has no such database" in r.output and "cannot reach" not in r.output


def test_a_password_refused_or_missing_is_a_config_error(run, own_redis: EmbeddedRedis) -> None:  # type: ignore[no-untyped-def]
    """The broker answered: exit 2 and what to fix, not "cannot reach" (exit 3)."""
    own_redis.client().config_set("requirepass", "right-pw")
    port = own_redis.port
    cases = {
        f"redis://:wrong-pw@127.0.0.1:{port}/0": "refused the user or password",
        f"redis://127.0.0.1:{port}/0": "requires a password",
    }
    for url, said in cases.items():
        for args in (("status",), ("claim", "batch1", "--purpose", "p", "-o", "json")):
            r = run(*args, env={"BATCHCTL_BROKER_URL": url})
            assert r.exit_code == 2, (url, args, r.output)
            assert said in r.output and "cannot reach" not in r.output, r.output
            assert "wrong-pw" not in r.output and "right-pw" not in r.output


def test_a_user_that_may_not_run_the_scripts_is_a_config_error(
    run, own_redis: EmbeddedRedis
) -> None:  # type: ignore[no-untyped-def]
    """The broker answered NOPERM to the reader's EVALSHA: exit 2 and the ACL to add,
    not "cannot reach" (exit 3)."""
    own_redis.client().execute_command(
        "ACL", "SETUSER", "reader", "on", ">reader-pw", "~*", "&*", "+@read", "+@connection"
    )
    url = f"redis://reader:reader-pw@127.0.0.1:{own_redis.port}/0"
    for args in (("status",), ("status", "-o", "json")):
        r = run(*args, env={"BATCHCTL_BROKER_URL": url})
        assert r.exit_code == 2, (args, r.output)
        assert "cannot reach" not in r.output, r.output
        assert "+evalsha" in r.output and "Least privilege" in r.output, r.output
        assert "reader-pw" not in r.output


def test_status_watch_exits_3_when_the_broker_is_down_at_the_end(
    own_redis: EmbeddedRedis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from exporter.collect import InProcessSource

    cfg = tmp_path / "c.yml"
    cfg.write_text(f"kubernetes: {{enabled: false}}\nbroker:\n  url: {own_redis.url}\n")
    monkeypatch.delenv("BATCHCTL_BROKER_URL", raising=False)
    args = ["status", "-w", "-o", "json", "--interval", "0.1", "--count", "4", "-c", str(cfg)]
    # A real outage, between readings: the server stops (or starts) after reading i.
    outage: dict[int, Callable[[], object]] = {}
    readings = itertools.count(1)
    collect = InProcessSource.collect

    def reading(self: InProcessSource, max_age: float = 0.0) -> Snapshot:
        snap = collect(self, max_age)
        outage.get(next(readings), lambda: None)()
        return snap

    monkeypatch.setattr(InProcessSource, "collect", reading)

    def watch() -> tuple[int, list[bool]]:
        r = CliRunner().invoke(cli, args, catch_exceptions=False)
        docs = [strict(line) for line in r.stdout.splitlines()]
        # A null claim while the broker is down is unknown, and the document says so.
        assert [d["claims_known"] for d in docs] == [d["broker_up"] for d in docs]
        return r.exit_code, [d["broker_up"] for d in docs]

    # Down from the second reading on, down at the end: exit 3.
    outage.update({1: own_redis.stop})
    assert watch() == (3, [True, False, False, False])
    # Down for a while, back for the last reading: exit 0.
    own_redis.start()
    readings = itertools.count(1)
    outage.clear()
    outage.update({1: own_redis.stop, 2: own_redis.start})
    assert watch() == (0, [True, False, True, True])


@pytest.mark.parametrize(
    "args",
    [
        ("--tasks", "0"),
        ("--tasks", "-5"),
        ("--max-replicas", "0"),
        ("--task-seconds", "-1"),
        ("--timeout", "0"),
    ],
)
def test_demo_options_out_of_range_are_usage_errors(args: tuple[str, ...]) -> None:
    """Refused before anything starts (no Redis, no workers): exit 2, the option named."""
    r = CliRunner().invoke(cli, ["demo", *args])
    assert r.exit_code == 2, r.output
    assert args[0] in r.output and "Traceback" not in r.output
