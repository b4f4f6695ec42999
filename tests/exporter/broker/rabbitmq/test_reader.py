"""The RabbitMQ reader against a real node: real Celery producers and workers, the figures
compared with what RabbitMQ itself says (the management API, a passive queue_declare).

Each test has a virtual host of its own and reads it as a monitoring user (the
`monitoring` tag, no permission on any task queue). RabbitMQ refreshes its statistics
every second on the test node: tests await the API's own figure, then check that
batchctl reports exactly it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from kombu import Connection, Exchange, Queue

from batchctl.config import Config
from batchctl.demo.tasks import enqueue, make_app
from exporter.broker import open_reader
from exporter.broker.rabbitmq.reader import RabbitReader
from exporter.snapshot import Snapshot
from tests.support.config import config_for
from tests.support.exporter import collect_once
from tests.support.metrics import sample
from tests.support.servers.rabbitmq import RabbitVhost
from tests.support.servers.redis import RedisServer
from tests.support.waits import wait_for
from tests.support.workers import Worker, workers

pytestmark = pytest.mark.integration

QUEUES = ("batch0", "batch1", "batch2", "batch3")


def cfg_for(v: RabbitVhost, queues: tuple[str, ...] = QUEUES, **broker: object) -> Config:
    """batchctl's config for the vhost: the monitoring user, claims in SQLite (unused)."""
    broker.setdefault("timeout_seconds", 5)
    return config_for(v.monitor_url, queues, broker=v.broker(**broker), claims={"store": "sqlite"})


def api_figure(v: RabbitVhost, queue: str, column: str, expected: int) -> None:
    """Wait until the management API's own statistics say `expected`."""
    wait_for(
        lambda: v.queue(queue).get(column) == expected,
        timeout=20,
        what=f"the management API's {column} of {queue} to be {expected}",
    )


def passive_declare(v: RabbitVhost, queue: str) -> Any:
    with Connection(v.url) as conn:
        return conn.channel().queue_declare(queue, passive=True)


def test_depth_is_exact_for_a_priority_queue_and_a_plain_one(rabbitmq: RabbitVhost) -> None:
    app = make_app(rabbitmq.url)  # RabbitMQ: queues declared with x-max-priority
    ids = enqueue(app, "batch1", 120, seconds=0, priorities=[0, 3, 6, 9], seed=7)
    plain = make_app(rabbitmq.url)
    plain.conf.task_queue_max_priority = None  # a queue without x-max-priority
    enqueue(plain, "batch2", 37, seconds=0, priorities=[0], seed=1)
    assert len(ids) == 120
    assert rabbitmq.queue("batch1")["arguments"] == {"x-max-priority": 9}
    assert rabbitmq.queue("batch2")["arguments"] == {}
    api_figure(rabbitmq, "batch1", "messages_ready", 120)
    api_figure(rabbitmq, "batch2", "messages_ready", 37)
    # Memory comes from another statistics table: it may show a moment later.
    wait_for(lambda: rabbitmq.queue("batch1").get("memory"), timeout=20, what="memory")

    snap, text = collect_once(cfg_for(rabbitmq))
    assert snap.queue("batch1").waiting == 120  # type: ignore[union-attr]
    assert snap.queue("batch2").waiting == 37  # type: ignore[union-attr]
    assert sample(text, "celery_queue_length", {"queue": "batch1"}) == 120
    assert sample(text, "celery_queue_length", {"queue": "batch2"}) == 37
    # What celery-exporter and KEDA read (AMQP passive declare: ready messages) agrees.
    assert passive_declare(rabbitmq, "batch1").message_count == 120
    # RabbitMQ counts no priority lists: no celery_queue_priority_length series.
    assert (
        sample(text, "celery_queue_priority_length", {"queue": "batch1", "priority": "0"}) is None
    )
    # Memory is the queue's own, from the same answer.
    assert sample(text, "celery_queue_memory_bytes", {"queue": "batch1"}) > 0


def test_a_declared_empty_queue_and_an_undeclared_batch_show_zero(rabbitmq: RabbitVhost) -> None:
    with Connection(rabbitmq.url) as conn:
        Queue("batch2", Exchange("batch2"), "batch2")(conn.channel()).declare()
    # The counts and the consumers come from two statistics tables, each in its own time
    # (before both, batchctl reports the queue's figures unknown: test_unpublished.py).
    wait_for(
        lambda: {"messages_ready", "consumers"} <= rabbitmq.queue("batch2").keys(),
        timeout=20,
        what="statistics",
    )
    snap, text = collect_once(cfg_for(rabbitmq))
    for q in ("batch2", "batch3"):  # declared, empty; never declared
        assert sample(text, "celery_queue_length", {"queue": q}) == 0
        assert sample(text, "celery_queue_unacked", {"queue": q}) == 0
        assert sample(text, "celery_queue_consumers", {"queue": q}) == 0
        assert sample(text, "celery_queue_oldest_message_age_seconds", {"queue": q}) == 0
    assert [q.queue for q in snap.queues][:4] == list(QUEUES)


def test_pagination_reads_every_queue_in_one_request_per_page(rabbitmq: RabbitVhost) -> None:
    names = [f"q{i:04d}" for i in range(620)]
    with Connection(rabbitmq.url) as conn:
        channel = conn.channel()
        for name in names:
            channel.queue_declare(name, durable=True, auto_delete=False)
        channel.basic_publish(channel.prepare_message(b"x"), exchange="", routing_key="q0600")
    api_figure(rabbitmq, "q0600", "messages_ready", 1)
    reader = open_reader(cfg_for(rabbitmq).broker)
    assert isinstance(reader, RabbitReader)
    try:
        found = reader.discover()
        assert sorted(found.queues) == names
        before = reader.api.requests
        read = reader.read(names, time.time())
        # 620 queues: two pages of at most 500, and the nodes once.
        assert reader.api.requests - before == 3
        by_name = dict(zip(read.queues, read.reads, strict=True))
        assert by_name["q0600"].waiting == 1
        assert sum(r.waiting for r in read.reads) == 1
        before = reader.api.requests
        reader.read(names, time.time())
        assert reader.api.requests - before == 2  # the nodes are read every 5 s at most
    finally:
        reader.close()


def test_prefetched_messages_are_in_flight_exactly_as_rabbitmq_counts_them(
    rabbitmq: RabbitVhost, redis_server: RedisServer, tmp_path: Path
) -> None:
    app = make_app(rabbitmq.url)
    enqueue(app, "batch1", 10, seconds=60, priorities=[0, 9], seed=3)
    with workers(tmp_path) as started:
        # One process, prefetch 4, late acks: it holds 4 (1 running, 3 reserved).
        started.append(
            Worker(
                rabbitmq.url, "batch1", "w1@test", tmp_path / "w1.log",
                concurrency=1, prefetch=4, record_url=redis_server.url,
            )
        )  # fmt: skip
        api_figure(rabbitmq, "batch1", "messages_unacknowledged", 4)
        api_figure(rabbitmq, "batch1", "messages_ready", 6)
        # Consumers come from another statistics table: they may show a moment later.
        api_figure(rabbitmq, "batch1", "consumers", 1)
        api = rabbitmq.queue("batch1")
        snap, text = collect_once(cfg_for(rabbitmq))
        assert (
            sample(text, "celery_queue_unacked", {"queue": "batch1"})
            == api["messages_unacknowledged"]
            == 4
        )
        assert sample(text, "celery_queue_length", {"queue": "batch1"}) == api["messages_ready"]
        assert sample(text, "celery_queue_consumers", {"queue": "batch1"}) == api["consumers"] == 1
        # The work left counts both: a release must not end this claim.
        assert snap.queue("batch1").work == 10  # type: ignore[union-attr]
        # What celery-exporter and KEDA see: 6 ready, the 4 in flight invisible.
        assert passive_declare(rabbitmq, "batch1").message_count == 6
        # Discovery: the worker's remote-control and event queues are not task queues.
        names = [q["name"] for q in rabbitmq.node.api("GET", f"/api/queues/{rabbitmq.vhost}")]
        assert any(n.endswith(".pidbox") for n in names), names
        reader = open_reader(cfg_for(rabbitmq).broker)
        try:
            assert sorted(reader.discover().queues) == ["batch1"]
        finally:
            reader.close()


def test_node_memory_and_a_raised_disk_alarm_are_exported(rabbitmq: RabbitVhost) -> None:
    node = rabbitmq.node
    # A node's statistics come a few seconds after it boots: unknown till then.
    wait_for(lambda: "mem_limit" in node.api("GET", "/api/nodes")[0], timeout=30)
    snap, text = collect_once(cfg_for(rabbitmq))
    nodes = node.api("GET", "/api/nodes")
    assert sample(text, "celery_broker_memory_max_bytes") == nodes[0]["mem_limit"] > 0
    assert 0 < sample(text, "celery_broker_memory_used_bytes") < nodes[0]["mem_limit"]
    assert sample(text, "celery_broker_alarm", {"resource": "disk"}) == 0
    assert sample(text, "celery_broker_alarm", {"resource": "memory"}) == 0
    # More free disk asked for than there is: RabbitMQ raises its disk alarm (and
    # blocks publishers) until the limit is put back.
    node.ctl("set_disk_free_limit", "100000GB")
    try:
        wait_for(
            lambda: node.api("GET", "/api/nodes")[0].get("disk_free_alarm") is True,
            timeout=30,
            what="the disk alarm",
        )
        snap, text = collect_once(cfg_for(rabbitmq))
        assert sample(text, "celery_broker_alarm", {"resource": "disk"}) == 1
        assert snap.broker_alarms == {"disk": True, "memory": False}
    finally:
        node.ctl("set_disk_free_limit", "50MB")
        wait_for(
            lambda: node.api("GET", "/api/nodes")[0].get("disk_free_alarm") is False,
            timeout=30,
            what="the disk alarm to clear",
        )


def test_queue_names_with_odd_characters_are_read_and_exported(rabbitmq: RabbitVhost) -> None:
    # RabbitMQ refuses names that are not UTF-8 (FRAME_ERROR): anything else may come.
    odd = ['odd "q"', "ünï☃ 日本", "sp ace", "back\\slash", "{curly}=,#", "x" * 255]
    with Connection(rabbitmq.url) as conn:
        channel = conn.channel()
        for i, name in enumerate(odd):
            channel.queue_declare(name, durable=True, auto_delete=False)
            for _ in range(i + 1):
                channel.basic_publish(channel.prepare_message(b"x"), exchange="", routing_key=name)
    api_figure(rabbitmq, odd[-1], "messages_ready", len(odd))
    snap, text = collect_once(cfg_for(rabbitmq))  # discovery finds them
    for i, name in enumerate(odd):
        assert sample(text, "celery_queue_length", {"queue": name}) == i + 1, name
    assert Snapshot.from_json(snap.to_json()).queue(odd[0]).waiting == 1  # type: ignore[union-attr]
