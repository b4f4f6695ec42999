"""`batchctl claim` and `batchctl release` against a real Redis."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from batchctl.claims.store import ClaimStore

HOUR = 3600.0


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
    assert r.exit_code == 3  # backend unreachable
    assert "hunter2" not in r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "error: cannot reach the broker at redis://:***@127.0.0.1:1/0"
    ), r.output
