"""Claims: the record (expiry, fields), and the Redis store against a real server."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from batchctl.claims import Claim, ClaimConflict, Override, StoreUnavailable, describe_expiry
from batchctl.claims.redis_store import RedisClaimStore
from tests.support.claims import HOUR, NOW, claim
from tests.support.servers.redis import RedisServer

# The rules as tables: tests/batchctl/claims/test_rules.py.


def test_claim_expiry_and_description() -> None:
    c = claim(expires=NOW + 90)
    assert not c.expired(NOW) and c.expired(NOW + 90) and c.expired(NOW + 91)
    assert describe_expiry(c, NOW) == "expires in 1m30s"
    assert describe_expiry(c, NOW + 2 * HOUR + 90) == "expired 2h ago"


def test_claim_fields_round_trip_and_garbage() -> None:
    c = claim()
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
) -> Iterator[RedisClaimStore]:
    client = redis_server.client(decode_responses=request.param)
    yield RedisClaimStore(client)
    client.close()


def test_store_claim_extend_conflict_release(store: RedisClaimStore, redis_db: redis.Redis) -> None:
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


def test_store_expired_claim_stays_visible_until_taken_over(store: RedisClaimStore) -> None:
    store.claim("batch2", "alice", "reindex", 60, NOW)
    later = NOW + 3600
    old = store.get("batch2")
    assert old is not None and old.expired(later)  # kept: status can name who forgot
    taken = store.claim("batch2", "bob", "dedupe", HOUR, later)
    assert (taken.holder, taken.since) == ("bob", later)


def test_store_force_release(store: RedisClaimStore) -> None:
    store.claim("batch3", "alice", "reindex", HOUR, NOW)
    released = store.release("batch3", "bob", force=True, reason="alice is away")
    assert released is not None and released.holder == "alice"
    assert store.get("batch3") is None


def test_store_all_and_prefix(redis_db: redis.Redis) -> None:
    store = RedisClaimStore(redis_db, prefix="cl:")
    store.claim("batch0", "alice", "a", HOUR, NOW)
    assert redis_db.exists("cl:batchctl:claim:batch0")
    assert not redis_db.exists("batchctl:claim:batch0")
    got = store.all(["batch0", "batch1"])
    assert set(got) == {"batch0", "batch1"}
    assert got["batch0"] is not None and got["batch0"].holder == "alice"
    assert got["batch1"] is None
    assert RedisClaimStore(redis_db).get("batch0") is None  # another prefix, another namespace


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
            RedisClaimStore(client).claim(queue, name, "race", HOUR, NOW)
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
        stored = RedisClaimStore(redis_db).get(queue)
        assert stored is not None and stored.holder == winners[0]


def test_store_unreachable_raises_store_unavailable_from_the_redis_error() -> None:
    client = redis.Redis(port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    with pytest.raises(StoreUnavailable) as info:
        RedisClaimStore(client).claim("batch1", "alice", "x", HOUR, NOW)
    assert isinstance(info.value.__cause__, redis.ConnectionError)
    assert info.value.cause is info.value.__cause__
    assert str(info.value).startswith("cannot reach the broker at redis://localhost:1/0: ")


# -- history, --any and the autoscaler's writes ----------------------------------------


def kinds(store: RedisClaimStore, queue: str | None = None) -> list[str]:
    return [e.kind for e in store.events(queue)]


def test_every_change_is_one_event_in_the_same_transaction(
    store: RedisClaimStore, redis_db: redis.Redis
) -> None:
    store.take("batch1", "alice", "reindex", HOUR, NOW)
    store.take("batch1", "alice", None, 2 * HOUR, NOW + 60)
    store.take("batch1", "alice", "", HOUR, NOW + 120)  # blank: keeps the purpose
    with pytest.raises(ClaimConflict):
        store.take("batch1", "bob", "mine", HOUR, NOW + 180)
    store.set_override("batch1", "alice", 3, NOW + 600, NOW + 200)
    store.give_back("batch1", "alice", False, NOW + 300)
    assert store.release("batch1", "alice", now=NOW + 400) is None  # nothing to release
    assert kinds(store) == ["claimed", "extended", "shortened", "scaled", "released"]
    events = store.events()
    assert all(e.purpose == "reindex" and e.holder == "alice" for e in events)
    assert [e.at for e in events] == [NOW, NOW + 60, NOW + 120, NOW + 200, NOW + 300]
    assert redis_db.xlen("batchctl:history") == 5
    assert store.get("batch1") is None


def test_a_refused_request_writes_nothing(store: RedisClaimStore, redis_db: redis.Redis) -> None:
    from batchctl.claims import ClaimRefused

    for purpose, ttl in (("   ", HOUR), (None, HOUR), ("p", 8 * 86400.0)):
        with pytest.raises(ClaimRefused):
            store.take("batch1", "alice", purpose, ttl, NOW, max_ttl=7 * 86400.0)
    assert redis_db.keys("*") == []


def test_takeover_names_the_previous_holder(store: RedisClaimStore) -> None:
    store.take("batch2", "alice", "reindex", 60, NOW)
    out = store.take("batch2", "bob", "dedupe", HOUR, NOW + HOUR)
    assert out.kind == "taken_over" and out.previous is not None
    assert out.previous.holder == "alice"
    (e,) = store.events("batch2")[1:]
    assert (e.kind, e.who, e.holder) == ("taken_over", "bob", "bob")
    assert e.detail == "from alice (reindex), whose claim expired 59m ago"


def test_history_by_batch_and_since_and_prefix(redis_db: redis.Redis) -> None:
    store = RedisClaimStore(redis_db, prefix="cl:")
    now = time.time()  # --since selects by the stream's ids, the Redis server's clock
    store.take("batch0", "alice", "a", HOUR, now - 2 * HOUR)
    store.take("batch1", "bob", "b", HOUR, now - 30)
    store.take("batch0", "alice", None, HOUR, now)
    assert redis_db.exists("cl:batchctl:history") and not redis_db.exists("batchctl:history")
    assert kinds(store, "batch0") == ["claimed", "claimed"]  # the first one had expired
    assert [e.queue for e in store.events(since=now - 60)] == ["batch1", "batch0"]
    assert [e.queue for e in store.recent(2).events] == ["batch0", "batch1"]  # newest first


def test_history_is_capped(redis_db: redis.Redis) -> None:
    store = RedisClaimStore(redis_db, history_cap=100)
    for i in range(600):
        store.take("batch1", "alice", "p", HOUR + i, NOW)
    # MAXLEN ~ trims whole stream nodes (100 entries each): about the cap, never all.
    assert 100 <= int(redis_db.xlen("batchctl:history")) < 300


def test_take_any_takes_free_batches_in_order_then_expired_ones(store: RedisClaimStore) -> None:
    queues = ["batch0", "batch1", "batch2"]
    store.take("batch0", "carol", "old", 60, NOW - HOUR)  # expired
    got = [store.take_any(queues, f"u{i}", "p", HOUR, NOW) for i in range(4)]
    assert [(o.claim.queue, o.kind) for o in got if o and o.claim] == [
        ("batch1", "claimed"),
        ("batch2", "claimed"),
        ("batch0", "taken_over"),
    ]
    assert got[3] is None  # every batch is held


def test_take_any_skips_a_claim_key_it_cannot_read(store: RedisClaimStore) -> None:
    """Another type under one claim key (WRONGTYPE): that batch is neither free nor
    lapsed, and never overwritten; the others are still taken."""
    store.client.set(store.key("batch0"), "garbage")
    got = store.take_any(["batch0", "batch1"], "alice", "p", HOUR, NOW)
    assert got is not None and got.claim is not None and got.claim.queue == "batch1"
    assert store.take_any(["batch0", "batch1"], "bob", "p", HOUR, NOW) is None
    assert store.client.get(store.key("batch0")) in (b"garbage", "garbage")  # both client kinds


def _take_any_race(server: RedisServer, queues: list[str], contenders: int) -> list[str | None]:
    """`contenders` clients, connected beforehand, ask for any batch at the same instant."""
    barrier = threading.Barrier(contenders)
    got: list[str | None] = []

    def contender(name: str) -> None:
        client = server.client()
        client.ping()
        barrier.wait()
        try:
            out = RedisClaimStore(client).take_any(queues, name, "race", HOUR, NOW)
            got.append(out.claim.queue if out and out.claim else None)
        finally:
            client.close()

    threads = [threading.Thread(target=contender, args=(f"u{i}",)) for i in range(contenders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return got


def test_take_any_at_the_same_moment_never_gives_one_batch_twice(
    redis_server: RedisServer, redis_db: redis.Redis
) -> None:
    queues = ["batch0", "batch1", "batch2", "batch3"]
    for _ in range(10):
        redis_db.flushdb()
        got = _take_any_race(redis_server, queues, 6)
        won = sorted(q for q in got if q is not None)
        assert won == queues and got.count(None) == 2


def test_autoscaler_writes_end_the_drain_and_note_the_expiry(store: RedisClaimStore) -> None:
    from batchctl.claims import Work

    store.take("batch1", "alice", "reindex", HOUR, NOW)
    out = store.give_back("batch1", "alice", False, NOW + 10, work=Work(5, 1), drain=True)
    seen = out.claim
    assert seen is not None and seen.draining
    assert store.end_drain("batch1", seen, NOW + 20, "done").kind == "drained"
    assert store.get("batch1") is None
    assert store.end_drain("batch1", seen, NOW + 30, "done").event is None  # gone already

    store.take("batch2", "bob", "x", 60, NOW)
    lapsed = store.get("batch2")
    assert lapsed is not None
    assert store.note_expired("batch2", lapsed, NOW + 120).kind == "expired"
    assert store.note_expired("batch2", lapsed, NOW + 180).event is None  # once
    noted = store.get("batch2")
    assert noted is not None and noted.expiry_noted
    assert kinds(store) == ["claimed", "draining", "drained", "claimed", "expired"]
    assert [e.who for e in store.events()][2::2] == ["autoscaler", "autoscaler"]


def test_override_round_trip_through_the_store(store: RedisClaimStore) -> None:
    store.take("batch1", "alice", "reindex", HOUR, NOW)
    store.set_override("batch1", "alice", 4, NOW + 900, NOW, reason="catch up")
    c = store.get("batch1")
    assert c is not None and c.override == Override(4, NOW + 900, "alice", "catch up", NOW)
