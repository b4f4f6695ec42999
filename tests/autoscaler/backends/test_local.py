"""The local actuator with real `celery worker` processes against a real Redis.

What matters is the stopping rule: a replica removed while it runs tasks finishes
them (warm shutdown), its prefetched messages go back to the queue, nothing is lost,
and only a worker that overruns its grace period is killed.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import cast

import pytest
import redis

from autoscaler.backends import ScaleNote
from autoscaler.backends.local import GRACE_MARGIN_SECONDS, LocalBackend, WorkerPool
from autoscaler.backends.ranking import Replica, idle_count
from batchctl.config import parse_config
from batchctl.demo.tasks import done_ids, enqueue, make_app, started_count
from exporter.broker.redis.keys import priority_list_name
from exporter.events.consumer import EventsConsumer
from tests.support.servers.redis import RedisServer
from tests.support.waits import wait_for
from tests.support.workers import events_config, wait_connected

pytestmark = pytest.mark.slow
MakePool = Callable[..., WorkerPool]
QUEUE = "batch1"


def depth(r: redis.Redis, queue: str = QUEUE, prefix: str = "") -> int:
    return sum(int(r.llen(priority_list_name(queue, s, prefix))) for s in (0, 3, 6, 9))


def unacked(r: redis.Redis, prefix: str = "") -> int:
    return int(r.hlen(f"{prefix}unacked"))


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes in process group `pgid`, from /proc."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # pid (comm) state ppid pgrp ...; comm may contain spaces, so split after ')'
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


@pytest.fixture
def make_pool(
    redis_server: RedisServer, redis_db: redis.Redis, tmp_path: Path
) -> Iterator[MakePool]:
    made: list[WorkerPool] = []

    def make(**kw: object) -> WorkerPool:
        opts: dict[str, object] = {
            "broker_url": redis_server.url,
            "run_dir": tmp_path / "run",
            "app": "batchctl.demo.tasks",
            "concurrency": 1,
        }
        opts.update(kw)
        act = WorkerPool(**opts)  # type: ignore[arg-type]
        made.append(act)
        return act

    yield make
    for act in made:
        act.shutdown(timeout=15)


def test_workers_start_consume_and_keep_secrets_off_the_command_line(
    make_pool: MakePool, redis_server: RedisServer, redis_db: redis.Redis
) -> None:
    act = make_pool(concurrency=2)
    assert act.set_replicas(QUEUE, 2) == 2
    assert act.get_replicas(QUEUE) == 2
    wait_for(lambda: act.ready_replicas(QUEUE) == 2, timeout=20, what="2 ready workers")
    assert act.get_replicas("batch2") == 0

    ids = enqueue(make_app(redis_server.url), QUEUE, 40, seconds=0.02)
    wait_for(lambda: len(done_ids(redis_db, QUEUE)) == 40, timeout=20, what="40 tasks done")
    assert done_ids(redis_db, QUEUE) == set(ids)
    assert depth(redis_db) == 0

    for w in act.workers(QUEUE):
        cmdline = Path(f"/proc/{w.pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        assert "-Q batch1" in cmdline and "--prefetch-multiplier 1" in cmdline
        assert "redis://" not in cmdline and str(redis_server.port) not in cmdline
        log = w.log_path.read_text()
        assert f"{w.node}@" in log and " ready." in log  # output goes to the run dir

    # Both processes consumed, not just one (prefetch 1 spreads the work).
    received = [w.log_path.read_text().count("] received") for w in act.workers(QUEUE)]
    assert all(n > 0 for n in received), received


def test_scale_to_zero_mid_run_finishes_running_tasks_and_loses_none(
    make_pool: MakePool, redis_server: RedisServer, redis_db: redis.Redis
) -> None:
    act = make_pool(concurrency=2)
    act.set_replicas(QUEUE, 2)
    wait_for(lambda: act.ready_replicas(QUEUE) == 2, timeout=20, what="2 ready workers")
    ids = enqueue(make_app(redis_server.url), QUEUE, 8, seconds=1.5)
    # Both workers busy: 2 x concurrency 2 x prefetch 1 = 4 messages in flight, all four
    # running. Not merely in `unacked`: a SIGTERM that lands while a worker is receiving
    # a message (between kombu's BRPOP and the pool) can hang Celery's warm shutdown for
    # good (Celery 5.7, prefork: seen 1 in ~18 runs, the worker logs "received" after
    # "Warm shutdown" and never exits). The backend's SIGKILL after the grace period is
    # what ends such a worker (test_worker_past_its_grace_period_is_killed...).
    wait_for(
        lambda: (unacked(redis_db), started_count(redis_db, QUEUE)) == (4, 4),
        timeout=10,
        what="4 tasks running",
    )

    assert act.set_replicas(QUEUE, 0) == 0
    assert act.get_replicas(QUEUE) == 0  # terminating ones no longer count
    assert act.terminating_replicas(QUEUE) == 2
    exits = act.shutdown(timeout=20)

    # A worker that does not finish its warm shutdown is killed: its log says where it stood.
    tails = {e.node: _tail(e.log_path) for e in exits if e.killed}
    assert [(e.requested, e.killed, e.returncode) for e in exits] == [(True, False, 0)] * 2, tails
    done = done_ids(redis_db, QUEUE)
    # The four running tasks finished; nothing was left in flight or dropped.
    assert len(done) >= 4
    assert unacked(redis_db) == 0
    assert len(done) + depth(redis_db) == 8
    assert done <= set(ids)

    act.set_replicas(QUEUE, 1)
    wait_for(lambda: len(done_ids(redis_db, QUEUE)) == 8, timeout=20, what="all 8 done")
    assert done_ids(redis_db, QUEUE) == set(ids)


def test_warm_shutdown_returns_prefetched_messages_to_the_queue(
    make_pool: MakePool, redis_server: RedisServer, redis_db: redis.Redis
) -> None:
    act = make_pool(concurrency=1, prefetch_multiplier=4)
    act.set_replicas(QUEUE, 1)
    ids = enqueue(make_app(redis_server.url), QUEUE, 6, seconds=1.0, priorities=[0])
    # One running, three reserved (prefetched, not started), two still waiting.
    wait_for(
        lambda: (unacked(redis_db), depth(redis_db), started_count(redis_db, QUEUE)) == (4, 2, 1),
        timeout=20,
        what="4 in flight, one of them running",
    )
    (worker,) = act.workers(QUEUE)

    act.set_replicas(QUEUE, 0)
    exits = act.shutdown(timeout=20)

    assert [(e.node, e.killed, e.returncode) for e in exits] == [(worker.node, False, 0)]
    assert len(done_ids(redis_db, QUEUE)) == 1  # the running task finished
    assert unacked(redis_db) == 0
    assert depth(redis_db) == 5  # the 3 prefetched ones are back in the queue
    assert "Restoring 3 unacknowledged message(s)" in worker.log_path.read_text()
    waiting = {json.loads(m)["headers"]["id"] for m in redis_db.lrange(QUEUE, 0, -1)}
    assert len(waiting) == 5
    assert done_ids(redis_db, QUEUE) | waiting == set(ids)


def test_worker_past_its_grace_period_is_killed_and_its_task_stays_unacked(
    make_pool: MakePool, redis_server: RedisServer, redis_db: redis.Redis
) -> None:
    act = make_pool(concurrency=1, grace_by_queue={QUEUE: 0.5})
    act.set_replicas(QUEUE, 1)
    (task_id,) = enqueue(make_app(redis_server.url), QUEUE, 1, seconds=60)
    (worker,) = act.workers(QUEUE)
    wait_for(lambda: "] received" in worker.log_path.read_text(), timeout=20, what="task received")

    act.set_replicas(QUEUE, 0)
    exits = act.shutdown(timeout=20)

    assert [(e.requested, e.killed, e.returncode) for e in exits] == [(True, True, -signal.SIGKILL)]
    # Nothing of the worker runs on: no pool child outlives it (zombies awaiting their
    # reaper run nothing and do not count).
    wait_for(lambda: not group_members(worker.pid), timeout=5, what="process group gone")
    # acks_late: the cut-off task is not lost, it waits in `unacked` for redelivery.
    assert done_ids(redis_db, QUEUE) == set()
    assert unacked(redis_db) == 1
    (entry,) = redis_db.hvals("unacked")
    message, _exchange, routing_key = json.loads(entry)
    assert (message["headers"]["id"], routing_key) == (task_id, QUEUE)


def test_scale_down_removes_not_ready_then_newest_first(make_pool: MakePool) -> None:
    act = make_pool()
    act.set_replicas(QUEUE, 2)
    wait_for(lambda: act.ready_replicas(QUEUE) == 2, timeout=20, what="2 ready workers")
    oldest, newest = act.workers(QUEUE)
    act.set_replicas(QUEUE, 3)
    starting = act.workers(QUEUE)[-1]

    act.set_replicas(QUEUE, 2)  # the one still starting goes first
    assert [w.terminating for w in (oldest, newest, starting)] == [False, False, True]
    act.set_replicas(QUEUE, 1)  # then the newest ready one
    assert [w.terminating for w in (oldest, newest)] == [False, True]
    assert [w.node for w in act.workers(QUEUE) if not w.terminating] == [oldest.node]
    wait_for(lambda: act.terminating_replicas() == 0, timeout=20, what="stopped workers reaped")
    assert act.get_replicas(QUEUE) == 1


def test_unexpected_exit_is_reaped_and_reported(make_pool: MakePool) -> None:
    act = make_pool()
    act.set_replicas(QUEUE, 1)
    (w,) = act.workers(QUEUE)
    os.killpg(w.pid, signal.SIGKILL)
    w.proc.wait(timeout=10)
    (gone,) = act.reap()
    assert (gone.node, gone.requested, gone.killed, gone.returncode) == (
        w.node,
        False,
        False,
        -signal.SIGKILL,
    )
    assert act.get_replicas(QUEUE) == 0


def test_from_config_derives_grace_and_worker_settings(tmp_path: Path) -> None:
    cfg = parse_config(
        {
            "broker": {"url": "redis://:pw@broker:6379/2", "global_keyprefix": "p:"},
            "batches": [
                {
                    "queue": "batch1",
                    "deployment": "celery-batch1",
                    "max_task_seconds": 90,
                    "prefetch_multiplier": 3,
                },
                {"queue": "batch2", "deployment": "celery-batch2"},
            ],
            "autoscaler": {"local_concurrency": 3, "local_app": "my.tasks"},
        },
        env={},
    )
    act = WorkerPool.from_config(cfg, tmp_path)
    assert act.grace_for("batch1") == 90 + GRACE_MARGIN_SECONDS
    assert act.grace_for("batch2") == 300 + GRACE_MARGIN_SECONDS
    assert act.grace_for("elsewhere") == 60
    assert (act.concurrency, act.app, act.keyprefix) == (3, "my.tasks", "p:")
    cmd = act._command("batch1", "n1")
    assert cmd[cmd.index("-A") + 1] == "my.tasks" and "redis://:pw@broker:6379/2" not in cmd
    # Each batch's workers prefetch as its config says (the policy's floor assumes it).
    assert cmd[cmd.index("--prefetch-multiplier") + 1] == "3"
    other = act._command("batch2", "n2")
    assert other[other.index("--prefetch-multiplier") + 1] == "4"  # the batch default
    assert act._env()["CELERY_BROKER_URL"] == "redis://:pw@broker:6379/2"


def test_rejects_negative_replicas(tmp_path: Path) -> None:
    act = WorkerPool(broker_url="redis://localhost:1/0", run_dir=tmp_path, app="x")
    with pytest.raises(ValueError):
        act.set_replicas(QUEUE, -1)


def _tail(path: Path | None, lines: int = 30) -> str:
    """The end of a worker's log, for a failure message."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path else ""
    except OSError as e:
        return f"(no log: {e})"


def test_a_scale_down_mid_run_stops_only_idle_workers(
    make_pool: MakePool, redis_server: RedisServer, redis_db: redis.Redis
) -> None:
    """Three workers, one running a task: 3 -> 1 with the busy map (Celery's events, read by
    the exporter's consumer) stops the two idle ones; the busy one finishes its task, and
    no stopped worker's log shows a task at all."""
    consumer = EventsConsumer(events_config(redis_server.url))
    consumer.start()
    try:
        wait_connected(consumer)
        pool = make_pool(events=True, grace_seconds=60)
        backend = LocalBackend(pool, [QUEUE])
        pool.set_replicas(QUEUE, 3)
        wait_for(lambda: pool.ready_replicas(QUEUE) == 3, 60, what="3 workers ready")
        wait_for(lambda: len(consumer.view(time.time()).workers) == 3, 30, what="3 heartbeats")
        (task,) = enqueue(make_app(redis_server.url), QUEUE, 1, seconds=8, priorities=(0,))
        wait_for(lambda: started_count(redis_db, QUEUE) == 1, 30, what="the task to start")

        def busy_map() -> list[Replica]:
            found = backend.busy_map(QUEUE, consumer.view(time.time()).workers, {})
            return found if idle_count(found) == 2 and len(found) == 3 else []

        replicas = cast(
            list[Replica], wait_for(busy_map, 30, what="the busy map: one worker busy, two idle")
        )
        (busy,) = [r.name for r in replicas if not r.idle]
        backend.set_replicas(QUEUE, 1, ScaleNote(3, 1, "step_down", "", None, tuple(replicas)))
        stopped = [w for w in pool.workers(QUEUE) if w.terminating]
        assert sorted(w.node for w in stopped) == sorted(r.name for r in replicas if r.idle)
        wait_for(lambda: task in done_ids(redis_db, QUEUE), 30, what="the running task to finish")
        wait_for(lambda: pool.terminating_replicas(QUEUE) == 0, 30, what="the idle ones gone")
        assert [w.node for w in pool.workers(QUEUE)] == [busy]
        for w in stopped:
            log = w.log_path.read_text()
            assert "Task batchctl.demo.tasks.work" not in log, log  # no task received or cut
            assert "WorkerLostError" not in log and "Restoring" not in log
    finally:
        consumer.stop()
