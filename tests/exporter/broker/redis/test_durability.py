"""Say what can be lost: a real Redis without persistence (`--save "" --appendonly no`) is
reported as such on /status, by `batchctl status` and in the log, and claims that a
restart wiped are reported as lost; a Redis with AOF is not reported."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import structlog
import yaml
from click.testing import CliRunner

from batchctl.claims.redis_store import RedisClaimStore
from batchctl.cli import cli
from batchctl.config import parse_config
from batchctl.demo.embedded import EmbeddedRedis
from exporter.broker.redis.durability import judge
from exporter.broker.redis.reader import RedisReader
from exporter.collect import InProcessSource
from exporter.snapshot import Snapshot
from exporter.status.board import status_page

pytestmark = pytest.mark.integration  # real servers, subprocesses or tools


def source_for(url: str) -> InProcessSource:
    cfg = parse_config(
        {"broker": {"url": url, "timeout_seconds": 2}, "kubernetes": {"enabled": False},
         "exporter": {"autoscaler_url": None}},
        env={},
    )  # fmt: skip
    return InProcessSource(cfg, RedisReader(cfg.broker))


def test_a_redis_without_persistence_is_reported(tmp_path: Path) -> None:
    with EmbeddedRedis() as server, structlog.testing.capture_logs() as logs:
        source = source_for(server.url)
        try:
            snap = source.collect()
            assert snap.durability is not None
            assert snap.durability.durable is False
            assert snap.durability.detail == "no AOF, no RDB save points"
            page = status_page(source.cfg, snap, None)
            assert 'id="not-durable"' in page and "claims and their history are not durable" in page
            # The JSON the sidecar reads carries it too.
            again = Snapshot.from_json(snap.to_json())
            assert again.durability == snap.durability
        finally:
            source.stop()
        assert any("not durable" in e["event"] for e in logs if e["log_level"] == "warning")
        cfg_file = tmp_path / "c.yml"
        cfg_file.write_text(
            yaml.safe_dump({"broker": {"url": server.url}, "kubernetes": {"enabled": False}})
        )
        out = CliRunner().invoke(cli, ["status", "-c", str(cfg_file)])
        assert out.exit_code == 0, out.output
        assert "claims and their history are not durable" in out.output


def test_a_redis_with_aof_is_not_reported() -> None:
    with EmbeddedRedis(extra_args=("--appendonly", "yes")) as server:
        source = source_for(server.url)
        try:
            snap = source.collect()
            assert snap.durability is not None and snap.durability.durable is True
            assert 'id="not-durable"' not in status_page(source.cfg, snap, None)
        finally:
            source.stop()


def test_claims_lost_in_a_restart_are_reported() -> None:
    with EmbeddedRedis() as server, structlog.testing.capture_logs() as logs:
        db = server.client()
        RedisClaimStore(db).claim("batch1", "alice", "reindex", 3600, time.time())
        db.close()
        source = source_for(server.url)
        try:
            assert "batch1" in source.collect().claims
            server.stop()  # killed: without persistence the restart starts empty
            assert not source.collect().broker_up
            server.start()
            snap = source.collect()
            assert snap.broker_up and not snap.claims
            assert snap.durability is not None
            assert dict(snap.durability.lost_claims) == {"batch1": "alice"}
            page = status_page(source.cfg, snap, None)
            assert 'id="claims-lost"' in page and "batch1 (alice)" in page
        finally:
            source.stop()
        assert any("claims lost" in e["event"] for e in logs)
    # A release is no loss: the run_id did not change.
    with EmbeddedRedis() as server:
        db = server.client()
        store = RedisClaimStore(db)
        store.claim("batch1", "alice", "reindex", 3600, time.time())
        source = source_for(server.url)
        try:
            source.collect()
            store.release("batch1", "alice", now=time.time())
            snap = source.collect()
            assert snap.durability is not None and not snap.durability.lost_claims
        finally:
            source.stop()
            db.close()


def test_judge() -> None:
    assert judge(False, "") == (False, "no AOF, no RDB save points")
    assert judge(False, "3600 1") == (True, "no AOF, RDB saves '3600 1'")
    assert judge(True, "") == (True, "AOF on, no RDB save points")
    assert judge(True, None) == (True, "AOF on")
    assert judge(False, None)[0] is None  # CONFIG GET refused by ACL: unknown


def test_a_batch_nobody_started_is_not_stalled() -> None:
    from exporter.progress import Progress
    from exporter.snapshot import QueueStats
    from exporter.status.table import _eta

    prog = Progress.from_json({"queue": "batch1", "rate_per_minute": 0.0, "rate_source": "events"})
    idle = QueueStats("batch1", 40, {0: 40}, 0, 60.0, 0, True, "celery-batch1", 0, 0)
    assert _eta(prog, idle) == "not started"
    running = idle._replace(ready_replicas=2, replicas=2)
    assert _eta(prog, running) == "stalled"
