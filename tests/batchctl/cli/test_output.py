"""One output convention: `-o json` of every command that prints data parses, its errors
included, and every outcome has the documented exit code (docs/cli.md)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from batchctl.claims.redis_store import RedisClaimStore
from batchctl.sim import BASELINE, OURS

DOWN = {"BATCHCTL_BROKER_URL": "redis://:secret@127.0.0.1:1/0"}
TRACE = "task_seconds: {mean: 1.0, p99: 3.0}\narrivals: [[0, 100]]\n"


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    """Config files and a trace the cases refer to by name."""
    out = {
        "dry": "kubernetes: {enabled: false}\nautoscaler:\n  backend: dry-run\n"
        "  snapshot_url: null\n  startup_timeout_seconds: 0.5\n",
        "bad": "broker: {discover_queue: true}\n",
        "trace": TRACE,
        "bad-trace": "arrivals: [[0, 1]]\ntask_seconds: {mean: 1.0, p99: 500.0}\n",
    }
    paths = {}
    for name, text in out.items():
        p = tmp_path / f"{name}.yml"
        p.write_text(text)
        paths[name] = str(p)
    return paths


def held(r: redis.Redis, queue: str = "batch1", holder: str = "alice") -> None:
    RedisClaimStore(r).claim(queue, holder, "reindex", 3600, time.time())


def all_held(r: redis.Redis) -> None:
    for i in range(4):
        held(r, f"batch{i}", "dave")


def work(r: redis.Redis) -> None:
    held(r)
    r.lpush("batch1", b"{}")


Setup = Callable[[redis.Redis], None] | None

# (name, setup, args (with {dry} etc. for files), env, exit code)
CASES: list[tuple[str, Setup, tuple[str, ...], dict[str, str], int]] = [
    ("claim", None, ("claim", "batch1", "--purpose", "p"), {}, 0),
    (
        "claim held by another",
        held,
        ("claim", "batch1", "--purpose", "p", "--holder", "bob"),
        {},
        1,
    ),
    ("claim too long", None, ("claim", "batch1", "--purpose", "p", "--ttl", "9d"), {}, 2),
    ("claim broker down", None, ("claim", "batch1", "--purpose", "p"), DOWN, 3),
    ("claim --any", None, ("claim", "--any", "--purpose", "p"), {}, 0),
    ("claim --any, none free", all_held, ("claim", "--any", "--purpose", "p"), {}, 1),
    ("claim, neither QUEUE nor --any", None, ("claim",), {}, 2),
    ("claim, unknown option", None, ("claim", "batch1", "--bogus"), {}, 2),
    ("release", held, ("release", "batch1"), {}, 0),
    ("release with work left", work, ("release", "batch1"), {}, 1),
    ("release --drain", work, ("release", "batch1", "--drain"), {}, 0),
    ("release unknown batch", None, ("release", "batch9"), {}, 2),
    ("release broker down", None, ("release", "batch1"), DOWN, 3),
    ("scale", held, ("scale", "batch1", "2", "-c", "{dry}"), {}, 0),
    (
        "scale, not the holder",
        held,
        ("scale", "batch1", "2", "-c", "{dry}", "--holder", "bob"),
        {},
        1,
    ),
    ("scale above the cap", held, ("scale", "batch1", "99", "-c", "{dry}"), {}, 2),
    ("scale without N", None, ("scale", "batch1"), {}, 2),
    ("scale broker down", None, ("scale", "batch1", "2", "-c", "{dry}"), DOWN, 3),
    ("history", held, ("history",), {}, 0),
    ("history of an unknown batch", None, ("history", "batch9"), {}, 2),
    ("history, bad --since", None, ("history", "--since", "soon"), {}, 2),
    ("history broker down", None, ("history",), DOWN, 3),
    ("status", held, ("status",), {}, 0),
    ("status, bad config", None, ("status", "-c", "{bad}"), {}, 2),
    ("status, bad --interval", None, ("status", "--interval", "0"), {}, 2),
    ("status broker down", None, ("status",), DOWN, 3),
    ("config check", None, ("config", "check", "{dry}"), {}, 0),
    ("config check, bad file", None, ("config", "check", "{bad}"), {}, 2),
    ("simulate", None, ("simulate", "{trace}", "--baseline", "none"), {}, 0),
    ("simulate, bad trace", None, ("simulate", "{bad-trace}"), {}, 2),
    ("autoscaler --once", work, ("autoscaler", "--once", "-c", "{dry}"), {}, 0),
    ("autoscaler --once, bad config", None, ("autoscaler", "--once", "-c", "{bad}"), {}, 2),
    ("autoscaler --once, broker down", None, ("autoscaler", "--once", "-c", "{dry}"), DOWN, 3),
]


@pytest.mark.parametrize(("name", "setup", "args", "env", "code"), CASES, ids=[c[0] for c in CASES])
def test_json_output_and_exit_codes(  # type: ignore[no-untyped-def]
    run,
    redis_db: redis.Redis,
    files: dict[str, str],
    name: str,
    setup: Setup,
    args: tuple[str, ...],
    env: dict[str, str],
    code: int,
) -> None:
    if setup is not None:
        setup(redis_db)
    argv = [a.format(**files) if a.startswith("{") else a for a in args]
    r = run(*argv, "-o", "json", env=env)
    assert r.exit_code == code, r.output
    docs = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(docs) == 1, r.stdout
    assert ("error" in docs[0]) == (code != 0), docs[0]
    assert "secret" not in r.output
    # The same command in table mode: the same exit code, and no JSON on stdout.
    r = run(*argv, env=env)
    assert r.exit_code == code, r.output
    assert not r.stdout.startswith("{")
    if code:
        assert r.stderr.strip(), "an error says why, on stderr"


def test_config_check_honours_batchctl_config(run, files: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    r = run("config", "check", "-o", "json", env={"BATCHCTL_CONFIG": files["bad"]})
    assert r.exit_code == 2
    doc = json.loads(r.stdout)
    assert doc["problems"] == [
        "broker.discover_queue: unknown key; did you mean 'discover_queues'?"
    ]
    r = run("config", "check", env={"BATCHCTL_CONFIG": files["dry"]})
    assert r.exit_code == 0 and r.stdout.startswith(f"{files['dry']}: OK (4 batches, broker ")
    r = run("config", "check", files["dry"], env={"BATCHCTL_CONFIG": files["bad"]})
    assert r.exit_code == 0  # FILE wins
    r = run("config", "check", env={"BATCHCTL_CONFIG": ""})
    assert r.exit_code == 2 and "give FILE or set BATCHCTL_CONFIG" in r.stderr


def test_simulate_json_to_stdout_and_the_deprecated_file(
    run, files: dict[str, str], tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    r = run("simulate", files["trace"], "-o", "json")
    doc = json.loads(r.stdout)
    assert set(doc["policies"]) == {OURS, BASELINE} and doc["trace"]["messages"] == 100
    out = tmp_path / "r.json"
    r = run("simulate", files["trace"], "--json", str(out))
    assert r.exit_code == 0 and json.loads(out.read_text())["trace"] == doc["trace"]
    assert '"deprecated option"' in r.stderr and "replica-seconds" in r.stdout
