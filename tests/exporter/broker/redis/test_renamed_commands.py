"""A Redis that renames optional commands away (`rename-command CLIENT ""`, the same for
INFO and CONFIG): a common hardening, and what some managed Redis services do.

Redis then answers `unknown command`, not NOPERM. What the command would have told is
unknown, as for a user whose ACL refuses it (test_acl.py): the queues read right,
`celery_broker_up` is 1, claims work, and the log says once what stays unknown and why.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import structlog
from click.testing import CliRunner

from batchctl.cli import cli
from batchctl.demo.tasks import enqueue, make_app
from exporter.broker.redis.reader import RedisReader
from exporter.collect import InProcessSource
from exporter.http.exposition import render_snapshot
from tests.support.config import config_for
from tests.support.metrics import sample
from tests.support.servers.redis import EmbeddedRedis

pytestmark = pytest.mark.integration
QUEUE = "batch1"
TASKS = 12
RENAMED = ("CLIENT", "INFO", "CONFIG")


@pytest.fixture
def hardened() -> Iterator[EmbeddedRedis]:
    args = tuple(a for cmd in RENAMED for a in ("--rename-command", cmd, ""))
    with EmbeddedRedis(extra_args=args) as server:
        with pytest.raises(Exception, match="unknown command"):
            server.client().execute_command("CLIENT", "SETNAME", "x")  # really renamed
        yield server


def test_the_queues_read_right_with_up_1(hardened: EmbeddedRedis) -> None:
    enqueue(make_app(hardened.url), QUEUE, TASKS, seconds=0, priorities=[0, 9])
    cfg = config_for(hardened.url, [QUEUE])
    source = InProcessSource(cfg, RedisReader(cfg.broker))
    try:
        with structlog.testing.capture_logs() as logs:
            snaps = [source.collect(), source.collect()]
    finally:
        source.stop()
    for snap in snaps:
        assert snap.broker_up, snap.broker_error
        text = render_snapshot(snap, version="t", kubernetes_enabled=False)
        assert sample(text, "celery_broker_up") == 1
        assert sample(text, "celery_queue_length", {"queue": QUEUE}) == TASKS
        assert sample(text, "celery_broker_memory_used_bytes") is None  # unknown, not 0
    said = [e for e in logs if e.get("command")]
    assert {e["command"] for e in said} >= {"CLIENT SETNAME", "INFO"}
    assert len(said) == len({e["command"] for e in said})  # once each
    assert all("rename-command" in e["fix"] for e in said), said


def test_claims_and_status_work(hardened: EmbeddedRedis, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BATCHCTL_BROKER_URL", hardened.url)
    monkeypatch.delenv("BATCHCTL_CONFIG", raising=False)
    runner = CliRunner()
    r = runner.invoke(cli, ["claim", QUEUE, "--purpose", "hardened", "--holder", "ann"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli, ["status", "-o", "json"])
    assert r.exit_code == 0, r.output
    assert "ann" in r.stdout
