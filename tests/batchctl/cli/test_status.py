"""`batchctl status`: table, JSON, watch, replicas from a fake Kubernetes API."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import redis

from batchctl.claims.store import ClaimStore
from tests.fakekube import FakeKube

HOUR = 3600.0


def test_cli_status_table_and_json(run, redis_db: redis.Redis) -> None:  # type: ignore[no-untyped-def]
    assert run("claim", "batch1", "--purpose", "reindex dockets").exit_code == 0
    redis_db.lpush("batch1", *[b"{}"] * 3)
    redis_db.lpush("batch1\x06\x169", b"{}")

    r = run("status")
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[0].split() == [
        "QUEUE",
        "HOLDER",
        "PURPOSE",
        "CLAIM",
        "WAITING",
        "IN",
        "FLIGHT",
        "OLDEST",
        "REPLICAS",
    ]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert set(rows) == {"batch0", "batch1", "batch2", "batch3"}
    assert rows["batch1"].split()[:3] == ["batch1", "alice", "reindex"]
    assert re.search(r"expires in (8h|7h59m)  ", rows["batch1"])
    # waiting counts every priority list; no workers, so nothing in flight
    assert rows["batch1"].split()[-4:] == ["4", "0", "-", "-"]
    assert rows["batch0"].split() == ["batch0", "-", "0", "0", "-", "-"]

    r = run("status", "-o", "json")
    data = json.loads(r.stdout)
    assert data["broker_up"] is True
    b1 = next(b for b in data["batches"] if b["queue"] == "batch1")
    assert b1["claim"]["holder"] == "alice" and b1["claim"]["expired"] is False
    assert (b1["waiting"], b1["in_flight"], b1["oldest_age_seconds"]) == (4, 0, None)


def test_cli_status_shows_expired_claims(run, redis_db: redis.Redis) -> None:  # type: ignore[no-untyped-def]
    ClaimStore(redis_db).claim("batch3", "dave", "forgotten", 60, time.time() - HOUR)
    r = run("status")
    row = next(line for line in r.output.splitlines() if line.startswith("batch3"))
    assert "dave" in row and "EXPIRED, expired" in row


def test_cli_status_watch_refreshes(run, redis_db: redis.Redis) -> None:  # type: ignore[no-untyped-def]
    redis_db.lpush("batch2", b"{}")
    r = run("status", "--watch", "-o", "json", "--interval", "0.1", "--count", "3")
    assert r.exit_code == 0, r.output
    snaps = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(snaps) == 3
    b2 = [next(b for b in s["batches"] if b["queue"] == "batch2") for s in snaps]
    # The oldest message can be dated only from the second reading on.
    assert b2[0]["oldest_age_seconds"] is None
    assert b2[2]["oldest_age_seconds"] >= 0.1


def test_cli_status_replicas_from_kubernetes(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with FakeKube("court-listener") as kube:
        kube.add_deployment("celery-batch1", replicas=3, ready=2)
        kube.add_deployment("celery-batch2", replicas=0, ready=0)
        cfg = tmp_path / "kube.yml"
        cfg.write_text(
            f"kubernetes:\n  namespace: court-listener\n"
            f"  kubeconfig: {kube.write_kubeconfig(tmp_path)}\n"
        )
        r = run("status", "--config", str(cfg))
        assert r.exit_code == 0, r.output
        rows = {line.split()[0]: line.split() for line in r.output.splitlines()[1:]}
        assert rows["batch1"][-1] == "2/3" and rows["batch2"][-1] == "0/0"
        assert rows["batch0"][-1] == "-"  # no such Deployment

        data = json.loads(run("status", "-o", "json", "--config", str(cfg)).stdout)
        b1 = next(b for b in data["batches"] if b["queue"] == "batch1")
        assert (b1["replicas"], b1["ready_replicas"]) == (3, 2)


def test_cli_status_without_kubeconfig_warns_and_shows_claims(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg = tmp_path / "kube.yml"
    cfg.write_text(f"kubernetes:\n  kubeconfig: {tmp_path / 'missing'}\n")
    r = run("status", "--config", str(cfg))
    assert r.exit_code == 0
    assert "warning: replicas unknown: kubernetes: cannot load the kubeconfig" in r.stderr
    assert r.stdout.splitlines()[0].startswith("QUEUE")


def test_cli_status_json_alias_is_deprecated_but_works(run, redis_db: redis.Redis) -> None:  # type: ignore[no-untyped-def]
    r = run("status", "--json")
    assert r.exit_code == 0
    assert len(json.loads(r.stdout)["batches"]) == 4
    assert '"deprecated option"' in r.stderr and "-o json" in r.stderr


def test_cli_status_json_when_the_broker_is_down(run) -> None:  # type: ignore[no-untyped-def]
    for args in (("-o", "json"), ("--json",), ("-o", "json", "--watch", "--count", "2")):
        r = run("status", *args, env={"BATCHCTL_BROKER_URL": "redis://:pw@127.0.0.1:1/0"})
        assert r.exit_code == 3
        doc = json.loads(r.stdout)
        assert doc["error"].startswith("cannot reach the broker at redis://:***@127.0.0.1:1/0")
