"""`release --drain` end to end with the local backend: real Redis, real `celery worker`
processes, the autoscaler loop running, the CLI as people type it.

claim -> enqueue -> scale up by hand -> release refused (work left) -> release --drain ->
every task done (counted by id) -> replicas back to 0 -> the claim ended by the
autoscaler -> the history tells each step.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import yaml

from autoscaler.backends.local import LocalBackend
from autoscaler.loop import Autoscaler
from batchctl.claims.redis_store import RedisClaimStore
from batchctl.claims.service import store_for
from batchctl.config import Config, parse_config
from batchctl.demo.tasks import done_ids, enqueue, make_app
from exporter.runtime import build_source
from tests.support.servers.redis import RedisServer
from tests.support.waits import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

QUEUE = "batch1"
TASKS = 80


@pytest.fixture
def local(redis_server: RedisServer, tmp_path: Path) -> Iterator[tuple[Config, Path, LocalBackend]]:
    """The autoscaler with the local backend, ticking every 0.5 s in a thread."""
    raw = {
        "broker": {"url": redis_server.url, "discover_queues": False},
        "kubernetes": {"enabled": False},
        "batches": [
            {
                "queue": QUEUE,
                "deployment": "celery-batch1",
                "max_replicas": 3,
                "step_interval_seconds": 1,
                "max_task_seconds": 10,
                "worker_concurrency": 2,
                "prefetch_multiplier": 1,
            }
        ],
        "autoscaler": {
            "backend": "local",
            "local_app": "batchctl.demo.tasks",
            "local_concurrency": 2,
            "interval_seconds": 0.5,
        },
    }
    path = tmp_path / "local.yml"
    path.write_text(yaml.safe_dump(raw))
    cfg = parse_config(raw, env={})
    backend = LocalBackend.from_config(cfg, tmp_path / "workers")
    source = build_source(cfg)
    claims = store_for(cfg)
    scaler = Autoscaler(cfg, source, backend, claims=claims)
    thread = threading.Thread(target=scaler.run, daemon=True)
    thread.start()
    try:
        yield cfg, path, backend
    finally:
        scaler.stop()
        thread.join(timeout=10)
        backend.close()
        source.stop()
        claims.close()


def test_release_drain_finishes_every_task_scales_to_zero_and_ends_the_claim(  # type: ignore[no-untyped-def]
    run,
    local: tuple[Config, Path, LocalBackend],
    redis_server: RedisServer,
    redis_db: redis.Redis,
) -> None:
    _, path, backend = local
    c = str(path)
    pool = backend.pool
    r = run("claim", QUEUE, "--purpose", "drain e2e", "-c", c)
    assert r.exit_code == 0, r.output
    ids = enqueue(make_app(redis_server.url), QUEUE, TASKS, seconds=0.25)

    # More workers by hand: with the local backend the autoscaler starts them.
    r = run("scale", QUEUE, "2", "--for", "10m", "-c", c)
    assert r.exit_code == 0 and "starts or stops the workers" in r.stdout, r.output
    wait_for(lambda: pool.ready_replicas(QUEUE) == 2, timeout=60, what="2 ready workers")
    wait_for(lambda: len(done_ids(redis_db, QUEUE)) >= 4, timeout=30, what="work under way")

    # Work is left: a plain release refuses and says how much.
    r = run("release", QUEUE, "-c", c, "-o", "json")
    assert r.exit_code == 1, r.output
    left = json.loads(r.stdout)
    assert left["waiting"] + left["in_flight"] > 0

    r = run("release", QUEUE, "--drain", "-c", c)
    assert r.exit_code == 0 and r.stdout.startswith(f"{QUEUE} is draining:"), r.output
    store = RedisClaimStore(redis_db)
    assert store.get(QUEUE) is not None  # still claimed while it drains

    # The autoscaler finishes the work, goes to 0 and ends the claim by itself.
    wait_for(lambda: store.get(QUEUE) is None, timeout=120, what="the claim ended")
    assert done_ids(redis_db, QUEUE) == set(ids)  # every task, counted by id
    assert pool.get_replicas(QUEUE) == 0
    wait_for(lambda: pool.terminating_replicas(QUEUE) == 0, timeout=30, what="workers gone")
    assert int(redis_db.hlen("unacked")) == 0 and int(redis_db.llen(QUEUE)) == 0

    # No growth while draining: only the two workers ever asked for were started.
    assert len(list(pool.run_dir.glob("*.log"))) == 2
    r = run("history", QUEUE, "-c", c, "-o", "json")
    events = json.loads(r.stdout)["events"]
    assert [e["kind"] for e in events] == ["claimed", "scaled", "draining", "drained"]
    assert [e["who"] for e in events] == ["alice", "alice", "alice", "autoscaler"]
    assert all(e["purpose"] == "drain e2e" for e in events)
    assert "0 replicas" in events[-1]["detail"]
