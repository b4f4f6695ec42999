"""`batchctl plan` and `batchctl claim --finish-by` against a real Redis: the work read
from the broker, the pace from the batch's task_seconds (no exporter here), the caps."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import redis

from batchctl.claims.redis_store import RedisClaimStore
from batchctl.demo.tasks import enqueue, make_app
from tests.support.servers.redis import RedisServer

pytestmark = pytest.mark.integration  # real servers, subprocesses or tools

HOUR = 3600.0
# batch1: 4 slots per replica, a typical task of 2 s (2 tasks/s per replica), at most 5
# replicas; prices set. No exporter to ask for a measured pace (snapshot_url: null).
CONFIG = """
kubernetes: {enabled: false}
autoscaler: {snapshot_url: null}
cost: {price_per_replica_hour: 0.5, co2e_grams_per_replica_hour: 30, currency: EUR}
batches:
  - {queue: batch0, deployment: celery-batch0}
  - {queue: batch1, deployment: celery-batch1, task_seconds: 2, worker_concurrency: 4,
     max_replicas: 5, step_up: 2}
"""


@pytest.fixture
def cfg(tmp_path: Path) -> str:
    path = tmp_path / "batchctl.yml"
    path.write_text(CONFIG)
    return str(path)


@pytest.fixture
def tasks(redis_server: RedisServer, redis_db: redis.Redis) -> list[str]:
    """10,000 tasks waiting in batch1: 5,000 replica-seconds of work at 2 tasks/s."""
    return enqueue(make_app(redis_server.url), "batch1", 10_000, seconds=0)


def test_plan_a_deadline_the_caps_can_meet(run, cfg: str, tasks: list[str]) -> None:  # type: ignore[no-untyped-def]
    r = run("plan", "batch1", "--finish-by", "2h", "-c", cfg, "-o", "json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert (doc["work"], doc["feasible"], doc["replicas"], doc["cap"]) == (10_000, True, 1, 5)
    assert doc["pace_per_replica"] == 2.0 and doc["pace_from"] == "task_seconds (config)"
    # One replica, from zero: 30 s to start, then 5,000 s of work.
    assert doc["expected_end"] - time.time() == pytest.approx(5030, abs=10)
    cost = doc["cost"]
    assert cost["replica_hours"] == pytest.approx(5030 / HOUR, abs=0.01)
    assert cost["cost"] == pytest.approx(0.5 * 5030 / HOUR, abs=0.01)
    assert cost["currency"] == "EUR" and cost["co2e_grams"] == pytest.approx(30 * 5030 / HOUR, 0.1)
    r = run("plan", "batch1", "--finish-by", "2h", "-c", cfg)
    assert r.exit_code == 0 and "needs 1 replica (cap 5)" in r.stdout, r.output
    assert "cost: 1.40 replica-hours" in r.stdout and "EUR" in r.stdout


def test_plan_a_deadline_the_caps_cannot_meet(run, cfg: str, tasks: list[str]) -> None:  # type: ignore[no-untyped-def]
    r = run("plan", "batch1", "--finish-by", "15m", "-c", cfg, "-o", "json")
    assert r.exit_code == 1, r.output
    doc = json.loads(r.stdout)
    # 5,000 replica-seconds in 13.5 min (a tenth spare), 2 more every minute: 8 replicas.
    assert (doc["feasible"], doc["replicas"]) == (False, 8)
    # At the cap it ends later than the deadline, and says when.
    assert doc["earliest_end"] > time.time() + 15 * 60
    r = run("plan", "batch1", "--finish-by", "15m", "-c", cfg)
    assert r.exit_code == 1
    assert "cannot be done in time: needs 8 replicas, the cap is 5" in r.stdout
    assert "late" in r.stdout
    # So soon that no number of replicas could: the ramp and the start-up alone take longer.
    r = run("plan", "batch1", "--finish-by", "10m", "-c", cfg, "-o", "json")
    assert r.exit_code == 1 and json.loads(r.stdout)["replicas"] is None
    r = run("plan", "batch1", "--finish-by", "10m", "-c", cfg)
    assert "cannot be done in time by any number of replicas" in r.stdout, r.output
    assert "step_up 2 per step_interval_seconds 60" in r.stdout, r.output


def test_plan_without_a_pace_says_how_to_give_one(run, cfg: str, tasks: list[str]) -> None:  # type: ignore[no-untyped-def]
    r = run("plan", "batch0", "--finish-by", "2h", "-c", cfg)
    assert r.exit_code == 2 and "give --task-seconds" in r.stderr, r.output
    r = run("plan", "batch0", "--finish-by", "2h", "--task-seconds", "4", "-c", cfg, "-o", "json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["pace_from"] == "--task-seconds"


def test_plan_refuses_a_time_that_is_not_one(run, cfg: str) -> None:  # type: ignore[no-untyped-def]
    r = run("plan", "batch1", "--finish-by", "teatime", "-c", cfg)
    assert r.exit_code == 2 and "is not a time" in r.output
    r = run("plan", "batch1", "--finish-by", "0s", "-c", cfg)
    assert r.exit_code == 2 and "must be longer than zero" in r.output, r.output


def test_claim_with_a_deadline_the_caps_cannot_meet_is_refused(  # type: ignore[no-untyped-def]
    run, cfg: str, tasks: list[str], redis_db: redis.Redis
) -> None:
    r = run("claim", "batch1", "--purpose", "reindex", "--finish-by", "15m", "-c", cfg)
    assert r.exit_code == 1, r.output
    assert "refused: the caps cannot finish batch1 by" in r.stderr
    assert (
        "cannot be done in time: needs" in r.stderr and "raise the batch's max_replicas" in r.stderr
    )
    # So soon that no number of replicas could: more replicas would not help, a faster
    # ramp would.
    r = run("claim", "batch1", "--purpose", "reindex", "--finish-by", "10m", "-c", cfg)
    assert r.exit_code == 1, r.output
    assert "raise the batch's max_replicas" not in r.stderr  # alone, it cannot help
    assert "raise the batch's step_up" in r.stderr, r.stderr
    assert RedisClaimStore(redis_db).get("batch1") is None  # nothing written


def test_claim_renew_and_drop_a_deadline(  # type: ignore[no-untyped-def]
    run, cfg: str, tasks: list[str], redis_db: redis.Redis
) -> None:
    r = run(
        "claim", "batch1", "--purpose", "reindex", "--finish-by", "3h", "--ttl", "8h", "-c", cfg
    )
    assert r.exit_code == 0, r.output
    assert "deadline " in r.stdout and "paces the batch" in r.stdout
    store = RedisClaimStore(redis_db)
    claim = store.get("batch1")
    assert claim is not None and claim.finish_by == pytest.approx(time.time() + 3 * HOUR, abs=5)
    # A renewal keeps it; a new one replaces it; `none` drops it.
    assert run("claim", "batch1", "--ttl", "8h", "-c", cfg).exit_code == 0
    assert store.get("batch1").finish_by == pytest.approx(claim.finish_by)  # type: ignore[union-attr]
    r = run("claim", "batch1", "--finish-by", "5h", "-c", cfg, "-o", "json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["claim"]["finish_by"] == pytest.approx(time.time() + 5 * HOUR, 5)
    assert run("claim", "batch1", "--finish-by", "none", "-c", cfg).exit_code == 0
    assert store.get("batch1").finish_by is None  # type: ignore[union-attr]
    details = [e.detail for e in store.events("batch1")]
    assert "deadline in 3h" in details[0] and "deadline dropped" in details[-1]
    # A deadline past the claim's expiry is a usage error.
    r = run("claim", "batch1", "--finish-by", "9h", "-c", cfg)
    assert r.exit_code == 2 and "give a --ttl of at least 9h" in r.stderr, r.output


def test_history_tells_what_an_ended_claim_cost(  # type: ignore[no-untyped-def]
    run, cfg: str, redis_db: redis.Redis
) -> None:
    store = RedisClaimStore(redis_db)
    claim = store.claim("batch1", "alice", "reindex", HOUR, time.time())
    store.add_usage("batch1", claim, 3 * HOUR)  # what the autoscaler counted
    assert run("release", "batch1", "-c", cfg).exit_code == 0
    r = run("history", "batch1", "-c", cfg)
    assert r.exit_code == 0, r.output
    assert "used 3.00 replica-hours; cost: 3.00 replica-hours, 1.50 EUR, 90 g CO2e" in r.stdout
    doc = json.loads(run("history", "batch1", "-c", cfg, "-o", "json").stdout)
    released = doc["events"][-1]
    assert released["kind"] == "released" and released["cost"]["cost"] == 1.5
