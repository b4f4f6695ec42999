"""`batchctl status`: table, JSON, watch, replicas from a fake Kubernetes API."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import redis

from batchctl.claims.redis_store import RedisClaimStore
from batchctl.demo.tasks import TASK_NAME, make_app
from tests.support.cli import columns
from tests.support.fakekube import FakeKube
from tests.support.servers.redis import RedisServer
from tests.support.waits import wait_for
from tests.support.workers import Worker, workers

HOUR = 3600.0


def test_cli_status_table_and_json(run, redis_db: redis.Redis) -> None:  # type: ignore[no-untyped-def]
    assert run("claim", "batch1", "--purpose", "reindex dockets").exit_code == 0
    redis_db.lpush("batch1", *[b"{}"] * 3)
    redis_db.lpush("batch1\x06\x169", b"{}")

    r = run("status")
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()  # warnings (the test Redis keeps no data) on stderr
    rows = {line.split()[0]: columns(lines[0], line) for line in lines[1:]}
    assert list(rows["batch1"]) == [
        "QUEUE", "HOLDER", "PURPOSE", "CLAIM", "WAITING", "IN FLIGHT", "SCHEDULED", "ACTIVE",
        "DONE/MIN", "FAILED 10M", "ETA", "OLDEST", "REPLICAS",
    ]  # fmt: skip
    assert set(rows) == {"batch0", "batch1", "batch2", "batch3"}
    b1 = rows["batch1"]
    assert (b1["HOLDER"], b1["PURPOSE"]) == ("alice", "reindex dockets")
    assert re.fullmatch(r"expires in (8h|7h59m)", b1["CLAIM"])
    # waiting counts every priority list; no workers, so nothing in flight; events are
    # off (the default): "no events", not zeros; one reading: no rate, no ETA, no age.
    assert [
        b1[k] for k in ("WAITING", "IN FLIGHT", "SCHEDULED", "ACTIVE", "DONE/MIN", "FAILED 10M")
    ] == ["4", "0", "0", "no events", "-", "no events"]
    assert [b1[k] for k in ("ETA", "OLDEST", "REPLICAS")] == ["-", "-", "-"]
    assert rows["batch0"]["HOLDER"] == "-" and rows["batch0"]["WAITING"] == "0"

    r = run("status", "-o", "json")
    data = json.loads(r.stdout)
    assert data["broker_up"] is True and data["events"] == "off"
    b1 = next(b for b in data["batches"] if b["queue"] == "batch1")
    assert b1["claim"]["holder"] == "alice" and b1["claim"]["expired"] is False
    assert (b1["waiting"], b1["in_flight"]) == (4, 0)
    # The first `status` stored when it first counted these messages (as the exporter
    # does): this reading's age comes from there, so it is known at once.
    assert 0 < b1["oldest_age_seconds"] < 60
    assert (b1["scheduled"], b1["stranded"]) == (0, 0)
    assert (b1["active"], b1["rate_per_minute"], b1["failed_recent"], b1["eta_seconds"]) == (
        None, None, None, None,
    )  # fmt: skip


def test_cli_status_shows_expired_claims(run, redis_db: redis.Redis) -> None:  # type: ignore[no-untyped-def]
    RedisClaimStore(redis_db).claim("batch3", "dave", "forgotten", 60, time.time() - HOUR)
    r = run("status")
    row = next(line for line in r.output.splitlines() if line.startswith("batch3"))
    assert "dave" in row and "EXPIRED 59m" in row and "expired" not in row


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


def test_cli_status_consumes_events_watching_and_in_one_reading(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg = tmp_path / "events.yml"
    cfg.write_text("kubernetes:\n  enabled: false\nevents:\n  enabled: true\n")
    r = run(
        "status", "--watch", "--json", "--interval", "0.5", "--count", "6", "--config", str(cfg)
    )
    assert r.exit_code == 0, r.output
    snaps = [json.loads(line) for line in r.stdout.splitlines()]
    assert snaps[-1]["events"] == "up"
    # Connected and no worker anywhere: zeros are the truth now, not "no events".
    assert {(b["active"], b["workers"]) for b in snaps[-1]["batches"]} == {(0, 0)}
    # One reading consumes them too: events are on, so it says what they say.
    once = json.loads(run("status", "--json", "--config", str(cfg)).stdout)
    assert once["events"] == "up" and once["batches"][0]["active"] == 0


def test_cli_status_one_reading_shows_the_running_task(  # type: ignore[no-untyped-def]
    run, redis_server: RedisServer, tmp_path: Path
) -> None:
    """ACTIVE of one `status` (no --watch) with events on and a worker running a task:
    the task, under the queue its worker says it consumes."""
    cfg = tmp_path / "events.yml"
    cfg.write_text("kubernetes:\n  enabled: false\nevents:\n  enabled: true\n")
    app = make_app(redis_server.url)
    with workers(tmp_path) as started:
        started.append(Worker(redis_server.url, "batch1", "celery@pod-x", tmp_path / "w.log"))
        app.tasks[TASK_NAME].apply_async(args=(30,), queue="batch1")
        wait_for(
            lambda: redis.Redis.from_url(redis_server.url).scard("batchctl:demo:started:batch1"),
            30,
            what="the task to start",
        )
        r = run("status", "--config", str(cfg))
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    row = columns(lines[0], next(line for line in lines if line.startswith("batch1")))
    assert row["ACTIVE"] == "1", r.stdout
