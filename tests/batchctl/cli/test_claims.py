"""`batchctl claim`, `release` and `history` against a real Redis."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import redis

from batchctl.claims.redis_store import RedisClaimStore

HOUR = 3600.0


def test_cli_claim_release_cycle(run, redis_db: redis.Redis) -> None:  # type: ignore[no-untyped-def]
    r = run("claim", "batch1", "--purpose", "reindex dockets", "--contact", "#infra", "--ttl", "2h")
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("claimed batch1 for alice until ")
    assert "(2h): reindex dockets" in r.stdout
    claim = RedisClaimStore(redis_db).get("batch1")
    assert claim is not None and claim.contact == "#infra"
    assert claim.expires - claim.since == pytest.approx(2 * HOUR, abs=1)
    # Every claim event is a log line too (stderr).
    assert '"kind": "claimed"' in r.stderr and '"claim event"' in r.stderr

    r = run("claim", "batch1", "--ttl", "1d", "--purpose", "")
    assert r.exit_code == 0 and r.stdout.startswith("extended batch1 for alice"), r.output
    assert "reindex dockets" in r.stdout  # a blank purpose never wipes it
    r = run("claim", "batch1", "--ttl", "1h")
    assert r.exit_code == 0 and r.stdout.startswith("shortened batch1 for alice"), r.output

    r = run("claim", "batch1", "--purpose", "mine now", env={"USER": "bob"})
    assert r.exit_code == 1
    assert "batch1 is claimed by alice (#infra) for 'reindex dockets', expires in 1h" in r.stderr

    r = run("release", "batch1", env={"USER": "bob"})
    assert r.exit_code == 1 and "add --force" in r.stderr

    r = run("release", "batch1")
    assert (r.exit_code, r.stdout) == (0, "released batch1\n")
    r = run("release", "batch1")
    assert (r.exit_code, r.stdout) == (0, "batch1 was not claimed; nothing to release\n")
    kinds = [e.kind for e in RedisClaimStore(redis_db).events("batch1")]
    assert kinds == ["claimed", "extended", "shortened", "released"]


def test_cli_default_ttl_from_config(run, tmp_path: Path, redis_db: redis.Redis) -> None:  # type: ignore[no-untyped-def]
    cfg = tmp_path / "c.yml"
    cfg.write_text("kubernetes: {enabled: false}\nclaims:\n  default_ttl: 30m\n")
    r = run("claim", "batch0", "--purpose", "p", "--config", str(cfg))
    assert r.exit_code == 0 and "(30m)" in r.stdout, r.output
    r = run("claim", "batch2", "--purpose", "p", "--holder", "carol")
    assert r.exit_code == 0 and "for carol" in r.stdout and "(8h)" in r.stdout, r.output


def test_cli_renamed_ttl_key_still_works_with_a_warning(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg = tmp_path / "c.yml"
    cfg.write_text("autoscaler:\n  claim_default_ttl_seconds: 1800\n")
    r = run("claim", "batch0", "--purpose", "p", "--config", str(cfg))
    assert r.exit_code == 0 and "(30m)" in r.stdout, r.output
    assert "autoscaler.claim_default_ttl_seconds: deprecated, use claims.default_ttl" in r.stderr


def test_cli_force_release(run) -> None:  # type: ignore[no-untyped-def]
    assert run("claim", "batch2", "--purpose", "p").exit_code == 0
    r = run("release", "batch2", "--force", env={"USER": "bob"})
    assert r.exit_code == 2 and "--force on alice's claim needs --reason" in r.stderr, r.output
    r = run("release", "batch2", "--force", "--reason", "alice is away", env={"USER": "bob"})
    assert (r.exit_code, r.stdout) == (0, "released batch2 (was held by alice)\n")
    r = run("history", "batch2", "-o", "json")
    assert json.loads(r.stdout)["events"][-1]["detail"] == (
        "held by alice, released by bob: alice is away"
    )


@pytest.mark.parametrize(
    "args",
    [
        ("claim", "batch1", "--purpose", "p", "--ttl", "1000w"),
        ("claim", "batch1", "--purpose", "p", "--ttl", "8d"),
        ("claim", "batch1", "--purpose", "   "),
        ("claim", "batch1", "--purpose", ""),
        ("claim", "batch1"),
        ("claim", "--any", "--purpose", " "),
        ("claim", "--any", "--purpose", "p", "--ttl", "8d"),
    ],
)
def test_cli_ttl_above_max_and_blank_purpose_write_nothing(  # type: ignore[no-untyped-def]
    run, redis_db: redis.Redis, args: tuple[str, ...]
) -> None:
    for output in ("table", "json"):
        r = run(*args, "-o", output)
        assert r.exit_code == 2, r.output
        if output == "json":
            assert "error" in json.loads(r.stdout)
        else:
            assert "claims.max_ttl (7d)" in r.stderr or "--purpose is required" in r.stderr
    assert redis_db.keys("*") == []  # no claim, no history


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
        (("claim", "batch1", "--any", "--purpose", "p"), 2, "either a QUEUE or --any"),
        (("history", "nope"), 2, "queue 'nope' is not a configured batch"),
        (("history", "--since", "yesterday"), 2, "is not a duration"),
        (("history", "--since", "9" * 400 + "w"), 2, "at most 100 years"),
        (("claim", "batch1", "--purpose", "p", "--ttl", "9" * 400 + "w"), 2, "at most 100 years"),
        (("scale", "batch1", "1", "--for", "9" * 400 + "w"), 2, "at most 100 years"),
    ],
)
def test_cli_errors(run, args: tuple[str, ...], code: int, message: str) -> None:  # type: ignore[no-untyped-def]
    r = run(*args)
    assert r.exit_code == code
    assert message in r.output
    r = run(*args, "-o", "json")
    assert r.exit_code == code
    assert message in json.loads(r.stdout)["error"]


@pytest.mark.parametrize(
    "command",
    [
        ("claim", "batch1", "--purpose", "p"),
        ("claim", "--any", "--purpose", "p"),
        ("release", "batch1"),
        ("status",),
        ("history",),
        ("scale", "batch1", "2"),
    ],
)
def test_cli_unreachable_broker_is_one_line_without_password(run, command: tuple[str, ...]) -> None:  # type: ignore[no-untyped-def]
    env = {"BATCHCTL_BROKER_URL": "redis://:hunter2@127.0.0.1:1/0"}
    r = run(*command, env=env)
    assert r.exit_code == 3, r.output  # backend unreachable
    assert "hunter2" not in r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "error: cannot reach the broker at redis://:***@127.0.0.1:1/0"
    ), r.output
    r = run(*command, "-o", "json", env=env)
    assert r.exit_code == 3 and "hunter2" not in r.output
    assert json.loads(r.stdout)["error"].startswith("cannot reach the broker at redis://:***@")


def test_cli_takeover_names_the_previous_holder(run, redis_db: redis.Redis) -> None:  # type: ignore[no-untyped-def]
    RedisClaimStore(redis_db).claim("batch3", "dave", "forgotten", 60, time.time() - HOUR)
    r = run("claim", "batch3", "--purpose", "mine", "-o", "json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["event"] == "taken_over" and doc["previous"]["holder"] == "dave"
    assert doc["claim"]["holder"] == "alice" and "from dave (forgotten)" in doc["detail"]
    r = run("history", "batch3")
    assert "taken_over" in r.stdout and "from dave (forgotten), whose claim expired" in r.stdout


def test_cli_claim_any(run, redis_db: redis.Redis) -> None:  # type: ignore[no-untyped-def]
    RedisClaimStore(redis_db).claim("batch0", "dave", "busy", HOUR, time.time())
    r = run("claim", "--any", "--purpose", "reindex")
    assert r.exit_code == 0, r.output
    assert r.stdout == "batch1\n"  # the name alone on stdout: B=$(batchctl claim --any ...)
    assert "claimed batch1 for alice" in r.stderr
    r = run("claim", "--any", "--purpose", "dedupe", "--holder", "bob", "-o", "json")
    assert json.loads(r.stdout)["claim"]["queue"] == "batch2"
    assert run("claim", "--any", "--purpose", "x", "--holder", "carol").stdout == "batch3\n"
    r = run("claim", "--any", "--purpose", "x", "--holder", "erin")
    assert r.exit_code == 1 and "no free batch" in r.stderr


def enqueue_raw(r: redis.Redis, queue: str, waiting: int, in_flight: int) -> None:
    """Messages as kombu keeps them: waiting in the list, in flight in `unacked`."""
    if waiting:
        r.lpush(queue, *[b"{}"] * waiting)
    for i in range(in_flight):
        r.hset("unacked", f"tag{i}", json.dumps([{"body": ""}, "", queue]))


def test_cli_release_with_work_refuses_drains_or_forces(run, redis_db: redis.Redis) -> None:  # type: ignore[no-untyped-def]
    assert run("claim", "batch1", "--purpose", "reindex").exit_code == 0
    enqueue_raw(redis_db, "batch1", waiting=1200, in_flight=3)

    r = run("release", "batch1")
    assert r.exit_code == 1
    assert "batch1 still has 1200 waiting and 3 in flight" in r.stderr and "--drain" in r.stderr
    r = run("release", "batch1", "-o", "json")
    assert r.exit_code == 1
    assert json.loads(r.stdout) | {"error": ""} == {"error": "", "waiting": 1200, "in_flight": 3}
    c = RedisClaimStore(redis_db).get("batch1")
    assert c is not None and not c.draining  # refused: nothing changed

    r = run("release", "batch1", "--drain")
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("batch1 is draining: 1200 waiting, 3 in flight left.")
    c = RedisClaimStore(redis_db).get("batch1")
    assert c is not None and c.draining
    r = run("release", "batch1", "--drain", "-o", "json")
    assert (r.exit_code, json.loads(r.stdout)["event"]) == (0, None)  # already draining

    r = run("release", "batch1", "--force")
    assert (r.exit_code, r.stdout) == (
        0,
        "released batch1, leaving 1200 waiting, 3 in flight behind\n",
    )
    assert '"release leaves work behind"' in r.stderr
    kinds = [e.kind for e in RedisClaimStore(redis_db).events("batch1")]
    assert kinds == ["claimed", "draining", "forced"]


def test_cli_history(run, redis_db: redis.Redis) -> None:  # type: ignore[no-untyped-def]
    store = RedisClaimStore(redis_db)
    now = time.time()
    store.take("batch0", "dave", "old work", HOUR, now - 3 * HOUR)
    assert run("claim", "batch1", "--purpose", "reindex").exit_code == 0
    assert run("release", "batch1").exit_code == 0

    r = run("history")
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["TIME", "BATCH", "EVENT", "WHO", "HOLDER", "PURPOSE", "DETAIL"]
    assert [ln.split()[2:4] for ln in lines[1:]] == [
        ["batch0", "claimed"],
        ["batch1", "claimed"],
        ["batch1", "released"],
    ]
    r = run("history", "batch1", "--since", "1h", "-o", "json")
    events = json.loads(r.stdout)["events"]
    assert [(e["kind"], e["who"], e["purpose"]) for e in events] == [
        ("claimed", "alice", "reindex"),
        ("released", "alice", "reindex"),
    ]
    assert json.loads(run("history", "batch2", "-o", "json").stdout)["events"] == []
    assert run("history", "batch2").stdout == "no claim events\n"


LATIN1 = "caf\udce9"  # b"caf\xe9" on the command line, as Python hands it over


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (("claim", "batch2", "--purpose", LATIN1), "--purpose"),
        (("claim", "batch2", "--purpose", "p", "--contact", LATIN1), "--contact"),
        (("claim", "batch2", "--purpose", "p", "--holder", LATIN1), "--holder"),
        (("claim", "--any", "--purpose", LATIN1), "--purpose"),
        (("release", "batch2", "--holder", LATIN1), "--holder"),
        (("scale", "batch2", "1", "--holder", LATIN1), "--holder"),
        (("scale", "batch2", "1", "--force", "--reason", LATIN1), "--reason"),
    ],
)
def test_cli_text_that_is_not_utf8_is_a_usage_error(  # type: ignore[no-untyped-def]
    run, redis_db: redis.Redis, args: tuple[str, ...], option: str
) -> None:
    r = run(*args)
    assert r.exit_code == 2, r.output
    assert f"'{option}': not valid UTF-8 text (byte 0xe9 at character 4)" in r.stderr
    r = run(*args, "-o", "json")
    assert r.exit_code == 2, r.output
    assert "not valid UTF-8 text (byte 0xe9" in json.loads(r.stdout)["error"]
    assert redis_db.keys("*") == []


def test_cli_text_from_the_environment_is_checked_too(run, redis_db: redis.Redis) -> None:  # type: ignore[no-untyped-def]
    r = run("claim", "batch2", env={"BATCHCTL_CLAIM_PURPOSE": LATIN1})
    assert r.exit_code == 2 and "not valid UTF-8 text" in r.stderr, r.output
    assert run("claim", "batch2", "--purpose", "café ☕").exit_code == 0  # UTF-8 is fine


NOBODY = {"USER": None, "LOGNAME": None, "LNAME": None, "USERNAME": None}


def _no_passwd_entry() -> str:
    raise KeyError("getpwuid(): uid not found: 65532")


@pytest.mark.parametrize(
    "args",
    [("claim", "batch1", "--purpose", "p"), ("release", "batch1"), ("scale", "batch1", "1")],
)
def test_cli_without_user_says_to_set_holder(  # type: ignore[no-untyped-def]
    run, redis_db: redis.Redis, monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...]
) -> None:
    monkeypatch.setattr("getpass.getuser", _no_passwd_entry)
    r = run(*args, env=NOBODY)
    assert r.exit_code == 2, r.output
    assert r.stderr.count("\n") == 1 and "set --holder (or $USER)" in r.stderr, r.stderr
    r = run(*args, "-o", "json", env=NOBODY)
    assert r.exit_code == 2 and "set --holder" in json.loads(r.stdout)["error"]
    assert redis_db.keys("*") == []
    # --holder is enough.
    assert run(*args, "--holder", "dave", env=NOBODY).exit_code != 2


def test_cli_default_holder_falls_back_to_logname_then_the_user_database(  # type: ignore[no-untyped-def]
    run, redis_db: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    r = run("claim", "batch1", "--purpose", "p", "-o", "json", env={**NOBODY, "LOGNAME": "bob"})
    assert json.loads(r.stdout)["claim"]["holder"] == "bob"
    monkeypatch.setattr("getpass.getuser", lambda: "carol")
    r = run("claim", "batch2", "--purpose", "p", "-o", "json", env=NOBODY)
    assert json.loads(r.stdout)["claim"]["holder"] == "carol"
    r = run("claim", "batch3", "--purpose", "p", env={"USER": LATIN1})
    assert r.exit_code == 2 and "$USER, the default --holder: not valid UTF-8" in r.stderr
    # A $USER that is no holder name is blamed on $USER, not on an --holder never given.
    r = run("claim", "batch3", "--purpose", "p", env={"USER": "has space"})
    assert r.exit_code == 2, r.output
    assert r.stderr.startswith("error: $USER, the default --holder, must be a name of 1 to 64")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("claim", "batch1", "--purpose", "p", "--holder", "h" * 3000), "--holder must be"),
        (("claim", "batch1", "--purpose", "a\tb"), "--purpose must be one line"),
        (("claim", "--any", "--purpose", "p", "--contact", "c" * 201), "--contact must be at"),
        (("release", "batch1", "--holder", "bob\tsmith"), "--holder must be"),
        (("scale", "batch1", "1", "--reason", "r" * 201), "--reason must be at most 200"),
    ],
)
def test_cli_holder_and_text_limits_are_usage_errors(  # type: ignore[no-untyped-def]
    run, redis_db: redis.Redis, args: tuple[str, ...], message: str
) -> None:
    r = run(*args)
    assert r.exit_code == 2, r.output
    assert message in r.stderr and len(r.stderr) < 300, r.stderr
    assert redis_db.keys("*") == []
