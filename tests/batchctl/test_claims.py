"""Claims: the pure rules as tables, and the Redis store against a real server."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from batchctl.claims import (
    Claim,
    ClaimConflict,
    decide_claim,
    decide_release,
    describe_expiry,
)
from batchctl.claims.store import ClaimStore
from batchctl.units import format_duration, parse_duration
from tests.conftest import RedisServer

NOW = 1_800_000_000.0
HOUR = 3600.0


def _claim(holder: str = "alice", expires: float = NOW + HOUR, **kw: object) -> Claim:
    fields: dict[str, object] = {
        "queue": "batch1",
        "holder": holder,
        "purpose": "reindex",
        "contact": "#infra",
        "since": NOW - HOUR,
        "expires": expires,
    }
    fields.update(kw)
    return Claim(**fields)  # type: ignore[arg-type]


# -- pure rules -------------------------------------------------------------------

CLAIM_CASES = {
    # name: (existing, holder, purpose, contact,
    #        expected (holder, purpose, contact, since, expires) or the error)
    "free batch": (None, "bob", "dedupe", None, ("bob", "dedupe", "", NOW, NOW + HOUR)),
    "held by another, live": (_claim(), "bob", "dedupe", None, ClaimConflict),
    "held by another, expired": (
        _claim(expires=NOW - 1),
        "bob",
        "dedupe",
        "@bob",
        ("bob", "dedupe", "@bob", NOW, NOW + HOUR),
    ),
    "expiry instant counts as expired": (
        _claim(expires=NOW),
        "bob",
        "x",
        None,
        ("bob", "x", "", NOW, NOW + HOUR),
    ),
    "same holder extends, keeps purpose and since": (
        _claim(),
        "alice",
        None,
        None,
        ("alice", "reindex", "#infra", NOW - HOUR, NOW + HOUR),
    ),
    "same holder updates purpose": (
        _claim(),
        "alice",
        "new purpose",
        "",
        ("alice", "new purpose", "", NOW - HOUR, NOW + HOUR),
    ),
    "same holder after expiry starts afresh": (
        _claim(expires=NOW - 5),
        "alice",
        None,
        None,
        ("alice", "", "", NOW, NOW + HOUR),
    ),
}


@pytest.mark.parametrize("name", list(CLAIM_CASES))
def test_decide_claim(name: str) -> None:
    existing, holder, purpose, contact, expected = CLAIM_CASES[name]
    if expected is ClaimConflict:
        with pytest.raises(ClaimConflict) as info:
            decide_claim(existing, "batch1", holder, purpose, contact, HOUR, NOW)
        assert info.value.existing == existing
        assert "held by alice" in str(info.value)
        return
    got = decide_claim(existing, "batch1", holder, purpose, contact, HOUR, NOW)
    assert (got.holder, got.purpose, got.contact, got.since, got.expires) == expected


@pytest.mark.parametrize(
    ("holder", "ttl"), [("", HOUR), (" alice", HOUR), ("a\nb", HOUR), ("alice", 0), ("alice", -1)]
)
def test_decide_claim_rejects_bad_input(holder: str, ttl: float) -> None:
    with pytest.raises(ValueError):
        decide_claim(None, "batch1", holder, "p", None, ttl, NOW)


RELEASE_CASES = {
    "nothing claimed": (None, "alice", False, False),
    "own claim": (_claim(), "alice", False, True),
    "another's claim, forced": (_claim(), "bob", True, True),
    "another's claim": (_claim(), "bob", False, ClaimConflict),
    "another's expired claim still needs force": (
        _claim(expires=NOW - 1),
        "bob",
        False,
        ClaimConflict,
    ),
}


@pytest.mark.parametrize("name", list(RELEASE_CASES))
def test_decide_release(name: str) -> None:
    existing, holder, force, expected = RELEASE_CASES[name]
    if expected is ClaimConflict:
        with pytest.raises(ClaimConflict):
            decide_release(existing, holder, force, NOW)
    else:
        assert decide_release(existing, holder, force, NOW) is expected


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("45s", 45),
        ("30m", 1800),
        ("8h", 8 * 3600),
        ("2d", 2 * 86400),
        ("1w", 7 * 86400),
        ("1h30m", 5400),
        (" 1H 30M ", 5400),
        ("1.5h", 5400),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text", ["", "8", "8x", "h", "-1h", "0m", "1h-30m", "1h 30", "eight hours"]
)
def test_parse_duration_errors_name_the_format(text: str) -> None:
    with pytest.raises(ValueError, match=r"30m, 8h, 2d|longer than zero"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (45, "45s"), (90, "1m30s"), (3600, "1h"), (28_740, "7h59m"), (183_600, "2d3h")],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_claim_expiry_and_description() -> None:
    c = _claim(expires=NOW + 90)
    assert not c.expired(NOW) and c.expired(NOW + 90) and c.expired(NOW + 91)
    assert describe_expiry(c, NOW) == "expires in 1m30s"
    assert describe_expiry(c, NOW + 2 * HOUR + 90) == "expired 2h ago"


def test_claim_fields_round_trip_and_garbage() -> None:
    c = _claim()
    assert Claim.from_fields("batch1", c.to_fields()) == c
    raw = {k.encode(): v.encode() for k, v in c.to_fields().items()}
    assert Claim.from_fields("batch1", raw) == c
    assert Claim.from_fields("batch1", {}) is None
    # A hand-edited record with unreadable times must not block the batch forever.
    broken = Claim.from_fields("batch1", {"holder": "x", "expires": "tomorrow"})
    assert broken is not None and broken.expired(NOW)


# -- the Redis store --------------------------------------------------------------


@pytest.fixture(params=[False, True], ids=["bytes", "decoded"])
def store(
    redis_db: redis.Redis, redis_server: RedisServer, request: pytest.FixtureRequest
) -> Iterator[ClaimStore]:
    client = redis_server.client(decode_responses=request.param)
    yield ClaimStore(client)
    client.close()


def test_store_claim_extend_conflict_release(store: ClaimStore, redis_db: redis.Redis) -> None:
    first = store.claim("batch1", "alice", "reindex", HOUR, NOW, contact="#infra")
    assert store.get("batch1") == first
    assert redis_db.hgetall("batch:claim:batch1") == {}
    stored = redis_db.hgetall("batchctl:claim:batch1")
    assert stored[b"holder"] == b"alice" and float(stored[b"expires"]) == NOW + HOUR

    extended = store.claim("batch1", "alice", None, 2 * HOUR, NOW + 60)
    assert (extended.since, extended.expires, extended.purpose) == (
        NOW,
        NOW + 60 + 2 * HOUR,
        "reindex",
    )

    with pytest.raises(ClaimConflict) as info:
        store.claim("batch1", "bob", "dedupe", HOUR, NOW + 120)
    assert info.value.existing == extended
    assert store.get("batch1") == extended  # a refused claim changes nothing

    with pytest.raises(ClaimConflict):
        store.release("batch1", "bob", now=NOW)
    assert store.get("batch1") == extended
    assert store.release("batch1", "alice") == extended
    assert store.get("batch1") is None
    assert store.release("batch1", "alice") is None


def test_store_expired_claim_stays_visible_until_taken_over(store: ClaimStore) -> None:
    store.claim("batch2", "alice", "reindex", 60, NOW)
    later = NOW + 3600
    old = store.get("batch2")
    assert old is not None and old.expired(later)  # kept: status can name who forgot
    taken = store.claim("batch2", "bob", "dedupe", HOUR, later)
    assert (taken.holder, taken.since) == ("bob", later)


def test_store_force_release(store: ClaimStore) -> None:
    store.claim("batch3", "alice", "reindex", HOUR, NOW)
    released = store.release("batch3", "bob", force=True)
    assert released is not None and released.holder == "alice"
    assert store.get("batch3") is None


def test_store_all_and_prefix(redis_db: redis.Redis) -> None:
    store = ClaimStore(redis_db, prefix="cl:")
    store.claim("batch0", "alice", "a", HOUR, NOW)
    assert redis_db.exists("cl:batchctl:claim:batch0")
    assert not redis_db.exists("batchctl:claim:batch0")
    got = store.all(["batch0", "batch1"])
    assert set(got) == {"batch0", "batch1"}
    assert got["batch0"] is not None and got["batch0"].holder == "alice"
    assert got["batch1"] is None
    assert ClaimStore(redis_db).get("batch0") is None  # another prefix, another namespace


def _race(server: RedisServer, queue: str, contenders: int) -> tuple[list[str], list[str]]:
    """`contenders` clients, connected beforehand, claim `queue` at the same instant."""
    barrier = threading.Barrier(contenders)
    winners: list[str] = []
    losers: list[str] = []

    def contender(name: str) -> None:
        client = server.client()
        client.ping()  # connect before the start line
        barrier.wait()
        try:
            ClaimStore(client).claim(queue, name, "race", HOUR, NOW)
            winners.append(name)
        except ClaimConflict:
            losers.append(name)
        finally:
            client.close()

    threads = [threading.Thread(target=contender, args=(f"u{i}",)) for i in range(contenders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return winners, losers


def test_store_concurrent_claims_have_one_winner(
    redis_server: RedisServer, redis_db: redis.Redis
) -> None:
    """Many clients claim the same free batch at once: WATCH/MULTI lets exactly one win."""
    for round_ in range(10):
        queue = f"race{round_}"
        winners, losers = _race(redis_server, queue, 8)
        assert (len(winners), len(losers)) == (1, 7)
        stored = ClaimStore(redis_db).get(queue)
        assert stored is not None and stored.holder == winners[0]


def test_store_unreachable_raises_redis_error() -> None:
    client = redis.Redis(port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    with pytest.raises(redis.ConnectionError):
        ClaimStore(client).claim("batch1", "alice", "x", HOUR, NOW)
