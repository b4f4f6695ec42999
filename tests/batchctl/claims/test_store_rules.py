"""The claim rules through a store: one table of cases, run against every store.

tests/batchctl/claims/test_rules.py holds the rules as pure functions; this runs the
same rules through `ClaimStore` (batchctl/claims/store.py) and checks what the
protocol promises every store: the rule's outcome, the record it keeps, the history
event written with the change and nothing at all when a rule refuses, one winner when
people race, and StoreUnavailable (never a backend's own error) when the store does
not answer. A store of another kind adds one entry to STORES: how to open stores on a
fresh, empty backend of this test's own, and a store whose backend does not answer.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from batchctl.claims import (
    Claim,
    ClaimConflict,
    ClaimRefused,
    Outcome,
    Refused,
    StoreUnavailable,
    Work,
    WorkLeft,
)
from batchctl.claims.redis_store import RedisClaimStore
from batchctl.claims.sqlite_store import SqliteClaimStore
from batchctl.claims.store import ClaimStore
from batchctl.units import format_duration
from tests.support.fakekube import FakeKube
from tests.support.isolation import starts_servers
from tests.support.leases import lease_store, unreachable_store
from tests.support.servers.network import closed_port
from tests.support.servers.redis import RedisDatabase

pytestmark = pytest.mark.integration  # real servers, subprocesses or tools

NOW = 1_800_000_000.0
HOUR = 3600.0
DAY = 86400.0
Q = "batch1"

# -- the stores ------------------------------------------------------------------------


@dataclass
class StoreKind:
    """How a test reaches one kind of store."""

    open: Callable[[], ClaimStore]  # a new store (its own connection) on the test's backend
    unreachable: Callable[[], ClaimStore]  # a store whose backend does not answer


def _redis(decode_responses: bool) -> Callable[[pytest.FixtureRequest], StoreKind]:
    def kind(request: pytest.FixtureRequest) -> StoreKind:
        db: RedisDatabase = request.getfixturevalue("redis_server")  # empty, this test's own
        opened: list[ClaimStore] = []

        def open_() -> ClaimStore:
            store = RedisClaimStore(db.client(decode_responses=decode_responses), url=db.url)
            opened.append(store)
            return store

        def unreachable() -> ClaimStore:
            client = redis.Redis(
                port=closed_port(), socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0)
            )
            opened.append(store := RedisClaimStore(client))
            return store

        request.addfinalizer(lambda: [s.close() for s in opened])
        return StoreKind(open_, unreachable)

    return kind


def _leases(request: pytest.FixtureRequest) -> StoreKind:
    """Leases on the fake API server (the official client over HTTP), this test's own."""
    kube: FakeKube = request.getfixturevalue("fake_kube")
    tmp: Path = request.getfixturevalue("tmp_path")
    opened: list[ClaimStore] = []

    def open_() -> ClaimStore:
        opened.append(store := lease_store(kube, tmp))
        return store

    def unreachable() -> ClaimStore:
        opened.append(store := unreachable_store(tmp))
        return store

    request.addfinalizer(lambda: [s.close() for s in opened])
    return StoreKind(open_, unreachable)


def _sqlite(request: pytest.FixtureRequest) -> StoreKind:
    path: Path = request.getfixturevalue("tmp_path") / "claims.sqlite3"  # this test's own
    opened: list[ClaimStore] = []

    def open_() -> ClaimStore:
        opened.append(store := SqliteClaimStore(path))
        return store

    def unreachable() -> ClaimStore:
        # Another process holds the file's exclusive lock (a journal-mode database in an
        # EXCLUSIVE transaction): nothing can read or write it until it lets go.
        held = request.getfixturevalue("tmp_path") / "held.sqlite3"
        holder = sqlite3.connect(held, isolation_level=None)
        holder.execute("CREATE TABLE IF NOT EXISTS claims (queue TEXT PRIMARY KEY, fields TEXT)")
        holder.execute("BEGIN EXCLUSIVE")
        request.addfinalizer(holder.close)
        opened.append(store := SqliteClaimStore(held, timeout=0.2))
        return store

    request.addfinalizer(lambda: [s.close() for s in opened])
    return StoreKind(open_, unreachable)


STORES: dict[str, Callable[[pytest.FixtureRequest], StoreKind]] = {
    "redis": _redis(decode_responses=False),  # as store_for opens it
    "redis-decoded": _redis(decode_responses=True),
    "kubernetes": _leases,  # one Lease per batch (claims.store: kubernetes)
    "sqlite": _sqlite,
}


@pytest.fixture
@starts_servers
def fake_kube() -> Iterator[FakeKube]:
    with FakeKube() as kube:
        yield kube


@pytest.fixture(params=list(STORES))
def stores(request: pytest.FixtureRequest) -> StoreKind:
    return STORES[request.param](request)


# -- the table ---------------------------------------------------------------------------

Step = Callable[[ClaimStore], Outcome | None]


def take(
    holder: str,
    at: float = 0,
    ttl: float = HOUR,
    purpose: str | None = "reindex",
    queue: str = Q,
    max_ttl: float | None = None,
    finish_by: float | None = None,
    clear_finish_by: bool = False,
) -> Step:
    """`finish_by`: seconds after NOW."""
    deadline = None if finish_by is None else NOW + finish_by
    return lambda s: s.take(
        queue,
        holder,
        purpose,
        ttl,
        NOW + at,
        max_ttl=max_ttl,
        finish_by=deadline,
        clear_finish_by=clear_finish_by,
    )


def take_any(holder: str, at: float = 0, queues: tuple[str, ...] = ("batch0", Q)) -> Step:
    return lambda s: s.take_any(queues, holder, "dedupe", HOUR, NOW + at)


def give_back(
    holder: str,
    at: float = 60,
    work: Work | None = None,
    *,
    force: bool = False,
    drain: bool = False,
    reason: str = "",
) -> Step:
    return lambda s: s.give_back(Q, holder, force, NOW + at, work=work, drain=drain, reason=reason)


def scale(
    holder: str, at: float = 60, replicas: int = 3, *, force: bool = False, reason: str = ""
) -> Step:
    return lambda s: s.set_override(
        Q, holder, replicas, NOW + at + 600, NOW + at, force=force, reason=reason
    )


def _seen(s: ClaimStore) -> Claim:
    seen = s.get(Q)
    assert seen is not None, "the autoscaler acts on a claim it saw"
    return seen


def end_drain(at: float = 600) -> Step:
    return lambda s: s.end_drain(Q, _seen(s), NOW + at, "nothing left")


def note_expired(at: float = HOUR) -> Step:
    return lambda s: s.note_expired(Q, _seen(s), NOW + at)


def use(seconds: float) -> Step:
    """The autoscaler adds replica-seconds to the claim it saw."""
    return lambda s: s.add_usage(Q, _seen(s), seconds)


def use_stale(seconds: float) -> Step:
    """The autoscaler adds replica-seconds to a claim that is no longer the one stored."""
    return lambda s: s.add_usage(Q, Claim(Q, "alice", "reindex", "", NOW - DAY, NOW), seconds)


LEFT = Work(5, 1)
NOTHING_LEFT = Work(0, 0)


@dataclass(frozen=True)
class Case:
    name: str
    when: Step  # the request under test
    then: str | type[Exception] | None  # the event kind, or what it raises; None: no change
    held: dict[str, str | None]  # each batch's state afterwards (see `state`)
    history: tuple[str, ...]  # every event kind stored, oldest first
    given: tuple[Step, ...] = field(default=())  # done first; each must succeed


def state(c: Claim | None) -> str | None:
    """'alice', 'alice, draining', 'alice, scaled to 3', 'alice, expiry noted', 'alice,
    finish in 2h', 'alice, used 600s'; None: free."""
    if c is None:
        return None
    parts = [c.holder]
    if c.finish_by is not None:
        parts.append(f"finish in {format_duration(c.finish_by - NOW)}")
    if c.replica_seconds:
        parts.append(f"used {c.replica_seconds:.0f}s")
    if c.draining:
        parts.append("draining")
    if c.override is not None:
        parts.append(f"scaled to {c.override.replicas}")
    if c.expiry_noted:
        parts.append("expiry noted")
    return ", ".join(parts)


ALICE = (take("alice"),)
ALICE_DRAINING = (take("alice"), give_back("alice", at=30, work=LEFT, drain=True))
ALICE_LAPSED = (take("alice", ttl=60),)

CASES = [
    # claim, renew, take over
    Case("claim a free batch", take("alice"), "claimed", {Q: "alice"}, ("claimed",)),
    Case("the holder renews for longer", take("alice", 60, 2 * HOUR), "extended",
         {Q: "alice"}, ("claimed", "extended"), ALICE),
    Case("the holder renews for shorter", take("alice", 60, HOUR / 2), "shortened",
         {Q: "alice"}, ("claimed", "shortened"), ALICE),
    Case("someone else's live claim blocks", take("bob", 60), ClaimConflict,
         {Q: "alice"}, ("claimed",), ALICE),
    Case("an expired claim is taken over", take("bob", HOUR), "taken_over",
         {Q: "bob"}, ("claimed", "taken_over"), ALICE_LAPSED),
    Case("the holder claims their own expired claim afresh",
         take("alice", HOUR, purpose=None), "claimed", {Q: "alice"}, ("claimed", "claimed"),
         ALICE_LAPSED),
    Case("a ttl above max_ttl writes nothing", take("alice", ttl=8 * DAY, max_ttl=7 * DAY),
         ClaimRefused, {Q: None}, ()),
    Case("a new claim needs a purpose", take("alice", purpose="  "), ClaimRefused,
         {Q: None}, ()),
    Case("renewing cancels a drain", take("alice", 120), "extended", {Q: "alice"},
         ("claimed", "draining", "extended"), ALICE_DRAINING),
    # --any
    Case("--any takes the first free batch", take_any("bob"), "claimed",
         {"batch0": "alice", Q: "bob"}, ("claimed", "claimed"),
         (take("alice", queue="batch0"),)),
    Case("--any takes over an expired claim when none is free", take_any("bob", HOUR),
         "taken_over", {"batch0": "bob", Q: "carol"}, ("claimed", "claimed", "taken_over"),
         (take("alice", ttl=60, queue="batch0"), take("carol", ttl=2 * HOUR))),
    Case("--any with every batch held changes nothing", take_any("bob"), None,
         {"batch0": "alice", Q: "carol"}, ("claimed", "claimed"),
         (take("alice", queue="batch0"), take("carol"))),
    # release, drain
    Case("release with nothing left", give_back("alice", work=NOTHING_LEFT), "released",
         {Q: None}, ("claimed", "released"), ALICE),
    Case("releasing a free batch changes nothing", give_back("alice"), None, {Q: None}, ()),
    Case("work left refuses a release", give_back("alice", work=LEFT), WorkLeft,
         {Q: "alice"}, ("claimed",), ALICE),
    Case("--drain with work left drains", give_back("alice", work=LEFT, drain=True),
         "draining", {Q: "alice, draining"}, ("claimed", "draining"), ALICE),
    Case("--force with work left leaves it", give_back("alice", work=LEFT, force=True),
         "forced", {Q: None}, ("claimed", "forced"), ALICE),
    Case("--drain and --force on one's own claim contradict",
         give_back("alice", work=LEFT, force=True, drain=True), ClaimRefused,
         {Q: "alice"}, ("claimed",), ALICE),
    Case("someone else's claim needs --force", give_back("bob"), ClaimConflict,
         {Q: "alice"}, ("claimed",), ALICE),
    Case("--force on someone else's claim needs --reason", give_back("bob", force=True),
         ClaimRefused, {Q: "alice"}, ("claimed",), ALICE),
    Case("--force --reason releases someone else's claim",
         give_back("bob", force=True, reason="alice is away"), "forced", {Q: None},
         ("claimed", "forced"), ALICE),
    # scale
    Case("the holder scales", scale("alice"), "scaled", {Q: "alice, scaled to 3"},
         ("claimed", "scaled"), ALICE),
    Case("someone else may not scale", scale("bob"), ClaimConflict, {Q: "alice"},
         ("claimed",), ALICE),
    Case("--force --reason scales someone else's batch",
         scale("bob", force=True, reason="catch up"), "forced", {Q: "alice, scaled to 3"},
         ("claimed", "forced"), ALICE),
    Case("a free batch cannot be scaled", scale("alice"), Refused, {Q: None}, ()),
    Case("an expired claim cannot be scaled", scale("alice", HOUR), Refused, {Q: "alice"},
         ("claimed",), ALICE_LAPSED),
    Case("a draining batch cannot be scaled", scale("alice", 120), Refused,
         {Q: "alice, draining"}, ("claimed", "draining"), ALICE_DRAINING),
    # the autoscaler's writes
    Case("the autoscaler ends a drain", end_drain(), "drained", {Q: None},
         ("claimed", "draining", "drained"), ALICE_DRAINING),
    Case("the autoscaler ends only a draining claim", end_drain(), None, {Q: "alice"},
         ("claimed",), ALICE),
    Case("the autoscaler notes an expiry", note_expired(), "expired",
         {Q: "alice, expiry noted"}, ("claimed", "expired"), ALICE_LAPSED),
    Case("an expiry is noted once", note_expired(HOUR + 60), None,
         {Q: "alice, expiry noted"}, ("claimed", "expired"), (*ALICE_LAPSED, note_expired())),
    Case("a live claim's expiry is not noted", note_expired(60), None, {Q: "alice"},
         ("claimed",), ALICE),
    # deadlines (--finish-by)
    Case("a claim with a deadline", take("alice", finish_by=2 * HOUR, ttl=3 * HOUR),
         "claimed", {Q: "alice, finish in 2h"}, ("claimed",)),
    Case("a deadline after the claim's expiry writes nothing",
         take("alice", finish_by=2 * HOUR), ClaimRefused, {Q: None}, ()),
    Case("a deadline in the past writes nothing", take("alice", finish_by=-60), ClaimRefused,
         {Q: None}, ()),
    Case("a renewal keeps the deadline", take("alice", 60, 3 * HOUR), "extended",
         {Q: "alice, finish in 2h"}, ("claimed", "extended"),
         (take("alice", finish_by=2 * HOUR, ttl=3 * HOUR),)),
    Case("a renewal sets a deadline", take("alice", 60, finish_by=HOUR / 2), "extended",
         {Q: "alice, finish in 30m"}, ("claimed", "extended"), ALICE),
    Case("a renewal drops the deadline", take("alice", 60, 3 * HOUR, clear_finish_by=True),
         "extended", {Q: "alice"}, ("claimed", "extended"),
         (take("alice", finish_by=2 * HOUR, ttl=3 * HOUR),)),
    Case("a renewal that ends the claim before its deadline writes nothing",
         take("alice", 60, HOUR), ClaimRefused, {Q: "alice, finish in 2h"}, ("claimed",),
         (take("alice", finish_by=2 * HOUR, ttl=3 * HOUR),)),
    # usage (the autoscaler's count of replica-seconds)
    Case("usage is added without an event", use(600), None, {Q: "alice, used 600s"},
         ("claimed",), ALICE),
    Case("usage adds up", use(300), None, {Q: "alice, used 900s"}, ("claimed",),
         (*ALICE, use(600))),
    Case("usage of a claim that is gone writes nothing", use_stale(600), None,
         {Q: "alice"}, ("claimed",), ALICE),
    Case("a renewal keeps the usage", take("alice", 120), "extended",
         {Q: "alice, used 600s"}, ("claimed", "extended"), (*ALICE, use(600))),
    Case("a release tells the usage", give_back("alice", work=NOTHING_LEFT), "released",
         {Q: None}, ("claimed", "released"), (*ALICE, use(1800))),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_the_rules_through_the_store(case: Case, stores: StoreKind) -> None:
    store = stores.open()
    for step in case.given:
        step(store)
    if isinstance(case.then, type):
        with pytest.raises(case.then):
            case.when(store)
    else:
        out = case.when(store)
        assert (out.kind if out is not None else None) == case.then
        if out is not None and out.claim is not None:  # what it says it stored, it stored
            assert store.get(out.claim.queue) == out.claim
    # Read back through another store (another connection): it is stored, not cached.
    other = stores.open()
    assert {q: state(other.get(q)) for q in case.held} == case.held
    assert {q: state(c) for q, c in other.all(list(case.held)).items()} == case.held
    assert [e.kind for e in other.history().events] == list(case.history)


def test_events_are_dated_and_name_who_did_it(stores: StoreKind) -> None:
    store = stores.open()
    store.take(Q, "alice", "reindex", 60, NOW)
    store.take(Q, "bob", "dedupe", HOUR, NOW + HOUR)
    seen = store.get(Q)
    assert seen is not None
    store.give_back(Q, "bob", False, NOW + HOUR + 10, work=LEFT, drain=True)
    drained = store.get(Q)
    assert drained is not None
    store.end_drain(Q, drained, NOW + HOUR + 20, "nothing left")
    got = [(e.kind, e.at, e.who, e.holder, e.purpose) for e in store.history(Q).events]
    assert got == [
        ("claimed", NOW, "alice", "alice", "reindex"),
        ("taken_over", NOW + HOUR, "bob", "bob", "dedupe"),
        ("draining", NOW + HOUR + 10, "bob", "bob", "dedupe"),
        ("drained", NOW + HOUR + 20, "autoscaler", "bob", "dedupe"),
    ]
    assert [e.kind for e in store.recent(2).events] == ["drained", "draining"]  # newest first
    assert store.history("batch0").events == []


def test_a_claim_that_ends_tells_what_it_used(stores: StoreKind) -> None:
    """The replica-seconds the autoscaler added reach the event that ends the claim, as a
    number and in its sentence; events that end no claim carry none."""
    store = stores.open()
    store.take(Q, "alice", "reindex", HOUR, NOW)
    store.add_usage(Q, _seen(store), 5400.0)
    store.give_back(Q, "alice", False, NOW + 60, work=LEFT, drain=True)
    store.end_drain(Q, _seen(store), NOW + 120, "nothing left")
    got = [(e.kind, e.replica_seconds) for e in stores.open().history(Q).events]
    assert got == [("claimed", None), ("draining", None), ("drained", 5400.0)]
    assert "used 1.50 replica-hours" in stores.open().history(Q).events[-1].detail


def test_racing_claims_of_one_batch_have_one_winner(stores: StoreKind) -> None:
    """Six people, each with a store of their own, claim one free batch at once."""
    contenders = [stores.open() for _ in range(6)]
    for s in contenders:
        s.get(Q)  # connected before the start line
    barrier = threading.Barrier(len(contenders))
    won: list[str] = []
    lost: list[str] = []

    def contender(i: int) -> None:
        barrier.wait()
        try:
            contenders[i].take(Q, f"u{i}", "race", HOUR, NOW)
            won.append(f"u{i}")
        except ClaimConflict:
            lost.append(f"u{i}")

    threads = [threading.Thread(target=contender, args=(i,)) for i in range(len(contenders))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert (len(won), len(lost)) == (1, 5)
    assert state(stores.open().get(Q)) == won[0]
    assert [e.kind for e in stores.open().history().events] == ["claimed"]


def test_racing_any_claims_never_get_one_batch_twice(stores: StoreKind) -> None:
    queues = ("batch0", "batch1", "batch2")
    contenders = [stores.open() for _ in range(5)]
    for s in contenders:
        s.get(Q)
    barrier = threading.Barrier(len(contenders))
    got: list[str | None] = []

    def contender(i: int) -> None:
        barrier.wait()
        out = contenders[i].take_any(queues, f"u{i}", "race", HOUR, NOW)
        got.append(out.claim.queue if out is not None and out.claim is not None else None)

    threads = [threading.Thread(target=contender, args=(i,)) for i in range(len(contenders))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(q for q in got if q is not None) == list(queues)
    assert got.count(None) == 2


OPERATIONS: dict[str, Callable[[ClaimStore], object]] = {
    "get": lambda s: s.get(Q),
    "all": lambda s: s.all([Q]),
    "take": take("alice"),
    "take_any": take_any("alice"),
    "give_back": give_back("alice"),
    "set_override": scale("alice"),
    "end_drain": lambda s: s.end_drain(Q, Claim(Q, "a", "p", "", NOW, NOW + 1), NOW, "d"),
    "note_expired": lambda s: s.note_expired(Q, Claim(Q, "a", "p", "", NOW, NOW + 1), NOW),
    "add_usage": lambda s: s.add_usage(Q, Claim(Q, "a", "p", "", NOW, NOW + 1), 60.0),
    "history": lambda s: s.history(),
    "recent": lambda s: s.recent(3),
}


@pytest.mark.parametrize("operation", list(OPERATIONS))
def test_a_store_that_does_not_answer_raises_store_unavailable(
    operation: str, stores: StoreKind
) -> None:
    """Every operation, whatever the store: StoreUnavailable with a message to show,
    the backend's own error kept as its cause."""
    with pytest.raises(StoreUnavailable) as info:
        OPERATIONS[operation](stores.unreachable())
    assert str(info.value).startswith("cannot reach ")
    assert info.value.cause is not None and info.value.__cause__ is info.value.cause
