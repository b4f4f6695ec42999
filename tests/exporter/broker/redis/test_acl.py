"""Least privilege: the ACL users sites give Celery apps, and a read-only monitoring user.

`app`: what Celery's own issues recommend (`~the_queue:* &* +@all -@dangerous`, with
`global_keyprefix: "the_queue:"`): CLIENT SETNAME and INFO are refused (@dangerous).
`monitor`: the read-only line of docs/operations.md: no writes, no INFO. Real Celery
producers send as `app`; the exporter, `batchctl status` and the reader read as either.
What a refused command would have told is unknown (no series), said once in the log with
the permission to add; the queues read right, and `celery_broker_up` is 1.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
import yaml
from click.testing import CliRunner

from batchctl.cli import cli
from batchctl.config import Config
from batchctl.demo.tasks import enqueue, make_app
from exporter.broker.redis.reader import RedisReader
from exporter.collect import InProcessSource
from exporter.http.exposition import render_snapshot
from tests.support.config import config_for
from tests.support.metrics import sample
from tests.support.paths import ROOT
from tests.support.servers.redis import EmbeddedRedis

pytestmark = pytest.mark.integration
PREFIX = "the_queue:"
QUEUE = "batch1"
TASKS = 25
APP_ACL = ["~the_queue:*", "&*", "+@all", "-@dangerous"]


def monitor_acl() -> list[str]:
    """The read-only user's rules, as docs/operations.md gives them (so the page and
    this test cannot drift apart)."""
    text = (ROOT / "docs" / "operations.md").read_text()
    line = re.search(r"^ACL SETUSER batchctl-monitor on >PASSWORD (.*)$", text, re.M)
    assert line, "docs/operations.md lost its read-only ACL SETUSER line"
    return line.group(1).replace("the_queue:", PREFIX).split()


@pytest.fixture
def acl_redis(own_redis: EmbeddedRedis) -> Iterator[EmbeddedRedis]:
    admin = own_redis.client()
    admin.execute_command("ACL", "SETUSER", "app", "on", ">apppw", *APP_ACL)
    admin.execute_command("ACL", "SETUSER", "batchctl-monitor", "on", ">monpw", *monitor_acl())
    yield own_redis


def url(server: EmbeddedRedis, user: str, password: str) -> str:
    return f"redis://{user}:{password}@127.0.0.1:{server.port}/0"


def cfg_as(server: EmbeddedRedis, user: str, password: str) -> Config:
    return config_for(url(server, user, password), [QUEUE], broker={"global_keyprefix": PREFIX})


@pytest.fixture
def sent(acl_redis: EmbeddedRedis) -> EmbeddedRedis:
    """25 tasks sent by a real Celery producer as the app's user, to the prefixed keys."""
    app = make_app(url(acl_redis, "app", "apppw"), keyprefix=PREFIX)
    enqueue(app, QUEUE, TASKS, seconds=0, priorities=[0, 9])
    assert acl_redis.client().llen(PREFIX + QUEUE) > 0  # really under the prefix
    return acl_redis


@pytest.mark.parametrize(
    ("user", "password", "refused"),
    [
        ("app", "apppw", {"CLIENT SETNAME", "INFO"}),
        (
            "batchctl-monitor",
            "monpw",
            {"CLIENT SETNAME", "INFO", f"HSET/HDEL/PEXPIRE {PREFIX}batchctl:first_seen"},
        ),
    ],
)
def test_the_user_reads_25_of_25_with_up_1(
    sent: EmbeddedRedis, user: str, password: str, refused: set[str]
) -> None:
    cfg = cfg_as(sent, user, password)
    source = InProcessSource(cfg, RedisReader(cfg.broker))
    try:
        with structlog.testing.capture_logs() as logs:
            snaps = [source.collect(), source.collect(), source.collect()]
    finally:
        source.stop()
    for snap in snaps:
        assert snap.broker_up, snap.broker_error
        text = render_snapshot(snap, version="t", kubernetes_enabled=False)
        assert sample(text, "celery_broker_up") == 1
        assert sample(text, "celery_queue_length", {"queue": QUEUE}) == TASKS
        # INFO refused: the broker's memory is unknown, not 0.
        assert sample(text, "celery_broker_memory_used_bytes") is None
        assert sample(text, "celery_broker_memory_max_bytes") is None
    said = [e for e in logs if e.get("command") and e.get("user") == user]
    # Each refused command is said once, whatever the number of reads, with its fix.
    assert {e["command"] for e in said} == refused
    assert len(said) == len(refused)
    assert all(e["fix"].startswith("add +") for e in said)


@pytest.mark.parametrize(("user", "password"), [("app", "apppw"), ("batchctl-monitor", "monpw")])
def test_batchctl_status_works_for_the_app_and_read_only_users(
    sent: EmbeddedRedis,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    user: str,
    password: str,
) -> None:
    """Issue 19: the app-scoped user's refused CLIENT SETNAME/INFO made `status` exit 2."""
    cfg_file = tmp_path / "batchctl.yml"
    cfg_file.write_text(
        yaml.safe_dump(
            {
                "broker": {"global_keyprefix": PREFIX},
                "kubernetes": {"enabled": False},
                "batches": [{"queue": QUEUE, "deployment": "celery-batch1"}],
            }
        )
    )
    monkeypatch.setenv("BATCHCTL_BROKER_URL", url(sent, user, password))
    r = CliRunner().invoke(cli, ["status", "-c", str(cfg_file), "-o", "json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["broker_up"] is True
    (row,) = data["batches"]
    assert (row["queue"], row["waiting"], row["in_flight"]) == (QUEUE, TASKS, 0)
    assert password not in r.output
