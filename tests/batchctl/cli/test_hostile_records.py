"""The CLI over broken claim records and history entries in Redis: never a traceback,
never a claim that does not expire, standard JSON only."""

from __future__ import annotations

import time

import pytest
import redis

from tests.support.cli import claim_rows, strict

HOUR = 3600.0


@pytest.mark.parametrize("bad", ["inf", "-inf", "nan"])
def test_status_and_claim_over_non_finite_claim_times(run, redis_db: redis.Redis, bad: str) -> None:  # type: ignore[no-untyped-def]
    now = time.time()
    redis_db.hset("batchctl:claim:batch1", mapping={"holder": "x", "since": bad, "expires": bad})
    redis_db.hset(
        "batchctl:claim:batch2",
        mapping={"holder": "y", "since": now, "expires": now + HOUR, "draining_since": bad},
    )
    redis_db.hset(
        "batchctl:claim:batch3",
        mapping={"holder": "z", "since": now, "expires": now + HOUR, "override_replicas": "3",
                 "override_until": bad, "override_by": "z", "override_since": now},
    )  # fmt: skip
    r = run("status")
    assert r.exit_code == 0, r.output
    cells = claim_rows(r.stdout)
    assert cells["batch1"].startswith("EXPIRED")  # long expired, not "never expires"
    assert cells["batch2"].startswith("expires in") and "draining" not in cells["batch2"]
    assert "scaled" not in cells["batch3"]

    r = run("status", "-o", "json")
    assert r.exit_code == 0, r.output
    b1 = next(b for b in strict(r.stdout)["batches"] if b["queue"] == "batch1")
    assert b1["claim"]["expired"] is True and b1["claim"]["expires"] == 0.0

    # The long-expired claim is taken over; both records in the JSON are standard.
    r = run("claim", "batch1", "--purpose", "mine", "-o", "json")
    assert r.exit_code == 0, r.output
    doc = strict(r.stdout)
    assert doc["event"] == "taken_over" and doc["previous"]["expires"] == 0.0


def test_history_with_entries_that_are_not_utf8_or_not_events(run, redis_db: redis.Redis) -> None:  # type: ignore[no-untyped-def]
    assert run("claim", "batch1", "--purpose", "reindex").exit_code == 0
    redis_db.xadd("batchctl:history", {"kind": "scaled", "queue": "batch1", "at": time.time(),
                                       "who": b"\xff\xfe", "holder": "alice"})  # fmt: skip
    redis_db.xadd("batchctl:history", {"kind": "claimed", "queue": "batch1", "at": "nan"})
    redis_db.xadd("batchctl:history", {b"\xff": b"\xfe"})
    redis_db.hset("batchctl:claim:batch2", mapping={"holder": b"\xffbob", "expires": "1e400"})

    r = run("history")
    assert r.exit_code == 0, r.output
    assert [line.split()[3] for line in r.stdout.splitlines()[1:]] == ["claimed", "scaled"]
    assert "\ufffd\ufffd" in r.stdout
    assert (
        "warning: 2 entries of the history stream (of any batch) could not be read and were "
        "skipped" in r.stderr
    )

    r = run("history", "batch1", "-o", "json")
    assert r.exit_code == 0, r.output
    doc = strict(r.stdout)
    assert doc["skipped"] == 2 and [e["kind"] for e in doc["events"]] == ["claimed", "scaled"]

    r = run("status")
    assert r.exit_code == 0 and claim_rows(r.stdout)["batch2"].startswith("EXPIRED"), r.output
