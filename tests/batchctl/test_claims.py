"""Claims: the pure rules as tables, the Redis store against a real server, the CLI."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from click.testing import CliRunner
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
from batchctl.cli import cli  # import the group first: it registers the claim commands
from batchctl.units import format_duration, parse_duration
from tests.conftest import RedisServer
from tests.fakekube import FakeKube

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


# -- CLI ----------------------------------------------------------------------------


@pytest.fixture
def run(  # type: ignore[no-untyped-def]
    redis_server: RedisServer,
    redis_db: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
):
    # No cluster here: replicas come from Kubernetes only in the test that fakes one.
    no_kube = tmp_path / "no-kube.yml"
    no_kube.write_text("kubernetes:\n  enabled: false\n")
    monkeypatch.setenv("BATCHCTL_BROKER_URL", redis_server.url)
    monkeypatch.setenv("USER", "alice")
    monkeypatch.setenv("BATCHCTL_CONFIG", str(no_kube))
    runner = CliRunner()

    def invoke(*args: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
        return runner.invoke(cli, list(args), env=env, catch_exceptions=False)

    return invoke


def test_cli_claim_release_cycle(run, redis_db: redis.Redis) -> None:  # type: ignore[no-untyped-def]
    r = run("claim", "batch1", "--purpose", "reindex dockets", "--contact", "#infra", "--ttl", "2h")
    assert r.exit_code == 0, r.output
    assert r.output.startswith("claimed batch1 for alice until ")
    assert "(2h): reindex dockets" in r.output
    claim = ClaimStore(redis_db).get("batch1")
    assert claim is not None and claim.contact == "#infra"
    assert claim.expires - claim.since == pytest.approx(2 * HOUR, abs=1)

    r = run("claim", "batch1", "--ttl", "1d")
    assert r.exit_code == 0 and r.output.startswith("extended batch1 for alice"), r.output
    assert "reindex dockets" in r.output

    r = run("claim", "batch1", "--purpose", "mine now", env={"USER": "bob"})
    assert r.exit_code == 1
    assert "batch1 is claimed by alice (#infra) for 'reindex dockets', expires in 1d" in r.output

    r = run("release", "batch1", env={"USER": "bob"})
    assert r.exit_code == 1 and "add --force" in r.output

    r = run("release", "batch1")
    assert (r.exit_code, r.output) == (0, "released batch1\n")
    r = run("release", "batch1")
    assert (r.exit_code, r.output) == (0, "batch1 was not claimed; nothing to release\n")


def test_cli_default_ttl_from_config(run, tmp_path: Path, redis_db: redis.Redis) -> None:  # type: ignore[no-untyped-def]
    cfg = tmp_path / "c.yml"
    cfg.write_text("autoscaler:\n  claim_default_ttl_seconds: 1800\n")
    r = run("claim", "batch0", "--purpose", "p", "--config", str(cfg))
    assert r.exit_code == 0 and "(30m)" in r.output, r.output
    r = run("claim", "batch2", "--purpose", "p", "--holder", "carol")
    assert r.exit_code == 0 and "for carol" in r.output and "(8h)" in r.output, r.output


def test_cli_force_release(run) -> None:  # type: ignore[no-untyped-def]
    assert run("claim", "batch2", "--purpose", "p").exit_code == 0
    r = run("release", "batch2", "--force", env={"USER": "bob"})
    assert (r.exit_code, r.output) == (0, "released batch2 (was held by alice)\n")


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (
            ("claim", "batch9", "--purpose", "p"),
            2,
            "configured batches: batch0, batch1, batch2, batch3",
        ),
        (("release", "nope"), 2, "queue 'nope' is not a configured batch"),
        (("claim", "batch1", "--purpose", "p", "--ttl", "8"), 2, "e.g. 30m, 8h, 2d"),
        (("claim", "batch1"), 2, "--purpose is required for a new claim"),
    ],
)
def test_cli_errors(run, args: tuple[str, ...], code: int, message: str) -> None:  # type: ignore[no-untyped-def]
    r = run(*args)
    assert r.exit_code == code
    assert message in r.output


@pytest.mark.parametrize(
    "command", [("claim", "batch1", "--purpose", "p"), ("release", "batch1"), ("status",)]
)
def test_cli_unreachable_broker_is_one_line_without_password(run, command: tuple[str, ...]) -> None:  # type: ignore[no-untyped-def]
    r = run(*command, env={"BATCHCTL_BROKER_URL": "redis://:hunter2@127.0.0.1:1/0"})
    assert r.exit_code == 1
    assert "hunter2" not in r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "error: cannot reach the broker at redis://:***@127.0.0.1:1/0"
    ), r.output


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

    r = run("status", "--json")
    data = json.loads(r.output)
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
    r = run("status", "--watch", "--json", "--interval", "0.1", "--count", "3")
    assert r.exit_code == 0, r.output
    snaps = [json.loads(line) for line in r.output.splitlines()]
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

        data = json.loads(run("status", "--json", "--config", str(cfg)).stdout)
        b1 = next(b for b in data["batches"] if b["queue"] == "batch1")
        assert (b1["replicas"], b1["ready_replicas"]) == (3, 2)


def test_cli_status_without_kubeconfig_warns_and_shows_claims(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg = tmp_path / "kube.yml"
    cfg.write_text(f"kubernetes:\n  kubeconfig: {tmp_path / 'missing'}\n")
    r = run("status", "--config", str(cfg))
    assert r.exit_code == 0
    assert "warning: replicas unknown: cannot load the kubeconfig" in r.stderr
    assert r.stdout.splitlines()[0].startswith("QUEUE")
