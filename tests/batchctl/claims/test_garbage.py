"""Broken claim records and history entries: decoded as garbage, never an error or a
claim that never expires; and the JSON we emit is standard JSON."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest
import redis

from batchctl import jsonout
from batchctl.claims import Claim, ClaimEvent, Override
from batchctl.claims.history import parse_entries
from batchctl.claims.redis_store import RedisClaimStore

NOW = 1_800_000_000.0
HOUR = 3600.0
GARBAGE = ["inf", "-inf", "nan", "Infinity", "NaN", "1e300", "-5"]

LIVE = Claim("batch1", "alice", "reindex", "#infra", NOW - HOUR, NOW + HOUR)


def fields(**changed: str) -> dict[str, str]:
    return LIVE.to_fields() | changed


@pytest.mark.parametrize("bad", GARBAGE)
@pytest.mark.parametrize("field", ["since", "expires"])
def test_garbage_claim_times_are_long_expired(field: str, bad: str) -> None:
    c = Claim.from_fields("batch1", fields(**{field: bad}))
    assert c is not None and c.holder == "alice"
    assert (c.since, c.expires) == (0.0, 0.0)
    assert c.expired(NOW) and c.remaining(NOW) == -NOW
    # Everything built from it is finite: no NaN metric, no Infinity in JSON.
    doc = c.to_json(NOW)
    assert all(math.isfinite(v) for v in (doc["since"], doc["expires"], doc["expires_in_seconds"]))  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", GARBAGE)
def test_a_garbage_drain_time_is_no_drain_and_a_garbage_override_none(bad: str) -> None:
    assert Claim.from_fields("batch1", fields(draining_since=bad)) == LIVE
    scaled = replace(LIVE, override=Override(3, NOW + 600, "alice", "", NOW - 60))
    for key in ("override_until", "override_since"):
        assert Claim.from_fields("batch1", scaled.to_fields() | {key: bad}) == LIVE
    assert Claim.from_fields("batch1", scaled.to_fields() | {"override_replicas": bad}) == LIVE


@pytest.mark.parametrize("bad", [math.inf, -math.inf, math.nan, 1e300, "Infinity", None, "x"])
def test_garbage_times_in_the_snapshot_api(bad: object) -> None:
    """The sidecar reads claims from the exporter's JSON; Python's json accepts
    Infinity and NaN, so a neighbouring version could send them."""
    scaled = replace(LIVE, override=Override(3, NOW + 600, "alice", "", NOW - 60))
    doc = scaled.to_json(NOW)
    c = Claim.from_json("batch1", doc | {"expires": bad})
    assert (c.since, c.expires) == (0.0, 0.0) and c.expired(NOW)
    assert Claim.from_json("batch1", doc | {"draining_since": bad}).draining_since is None
    for key in ("until", "since", "replicas"):
        o = doc["override"] | {key: bad}  # type: ignore[operator]
        assert Claim.from_json("batch1", doc | {"override": o}).override is None
    text = '{"holder": "x", "since": NaN, "expires": Infinity}'
    c = Claim.from_json("batch1", json.loads(text))
    assert c.expires == 0.0 and c.expired(NOW)


def test_a_good_claim_still_round_trips() -> None:
    full = replace(LIVE, draining_since=NOW - 5, override=Override(2, NOW + 60, "a", "r", NOW - 1))
    assert Claim.from_fields("batch1", full.to_fields()) == full
    assert Claim.from_json("batch1", full.to_json(NOW)) == full


def test_history_entries_not_utf8_are_decoded_with_replacement() -> None:
    raw = {b"kind": b"claimed", b"queue": b"batch1", b"at": b"1800000000.000"}
    e = ClaimEvent.from_entry(b"1-0", raw | {b"who": b"\xff\xfebob", b"detail": b"\xc3("})
    assert e is not None and e.who == "\ufffd\ufffdbob" and e.detail == "\ufffd("
    assert ClaimEvent.from_entry(b"\xff-0", raw) is not None


@pytest.mark.parametrize("at", [b"nan", b"inf", b"-inf", b"1e300", b"-1", b"\xff", b""])
def test_history_entries_with_garbage_times_are_skipped_and_counted(at: bytes) -> None:
    good = {b"kind": b"claimed", b"queue": b"batch1", b"at": b"1800000000"}
    read = parse_entries(
        [
            (b"1-0", good),
            (b"2-0", good | {b"at": at}),
            (b"3-0", {b"kind": b"claimed"}),  # no queue
            (b"4-0", None),
            ("not an entry",),
            (b"5-0", good | {b"who": b"\xff"}),
        ]
    )
    assert [e.id for e in read.events] == ["1-0", "5-0"] and read.skipped == 4


def test_the_store_skips_and_counts_broken_history(
    redis_db: redis.Redis,
) -> None:
    store = RedisClaimStore(redis_db)
    store.take("batch1", "alice", "reindex", HOUR, NOW)
    redis_db.xadd("batchctl:history", {"kind": "claimed", "queue": "batch1", "at": "nan"})
    odd = {b"kind": b"x", b"queue": b"batch1", b"at": b"1e9", b"who": b"\xff"}
    redis_db.xadd("batchctl:history", odd)  # type: ignore[arg-type]
    read = store.history()
    assert [e.kind for e in read.events] == ["claimed", "x"] and read.skipped == 1
    assert read.events[1].who == "\ufffd"
    recent = store.recent(10)
    assert [e.kind for e in recent.events] == ["x", "claimed"] and recent.skipped == 1


def test_json_out_is_standard_json() -> None:
    doc = {"a": math.inf, "b": [math.nan, 1.5, (-math.inf, 2)], "c": {"d": math.nan}, "e": "x"}
    text = jsonout.dumps(doc)
    assert json.loads(text) == {"a": None, "b": [None, 1.5, [None, 2]], "c": {"d": None}, "e": "x"}
    assert "Infinity" not in text and "NaN" not in text
