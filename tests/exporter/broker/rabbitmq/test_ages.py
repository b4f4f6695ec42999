"""The age of the oldest waiting message on RabbitMQ: from the AMQP `timestamp` that
publishers set, else from `task-sent` events, else unknown (no series, never 0)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from celery.signals import before_task_publish

from batchctl.config import Config
from batchctl.demo.tasks import enqueue, make_app
from exporter.http.exposition import render_snapshot
from exporter.runtime import build_source
from exporter.snapshot import Snapshot
from tests.support.config import config_for
from tests.support.metrics import sample
from tests.support.servers.rabbitmq import RabbitVhost
from tests.support.waits import wait_for

pytestmark = pytest.mark.integration

AGE = "celery_queue_oldest_message_age_seconds"


@pytest.fixture
def timestamped() -> Iterator[float]:
    """Publishers that set the AMQP timestamp, as a site would with Celery's
    before_task_publish signal; back-dated 100 s so the age is unmistakable."""
    stamp = int(time.time()) - 100

    def set_timestamp(properties: dict[str, Any], routing_key: str = "", **_: Any) -> None:
        if routing_key == "batch1":
            properties["timestamp"] = stamp

    before_task_publish.connect(set_timestamp, weak=False, dispatch_uid="test-timestamp")
    try:
        yield float(stamp)
    finally:
        before_task_publish.disconnect(dispatch_uid="test-timestamp")


def cfg_for(v: RabbitVhost, events: bool = False) -> Config:
    return config_for(
        v.monitor_url,
        ("batch1", "batch2"),
        broker=v.broker(timeout_seconds=5),
        claims={"store": "sqlite"},
        events={"enabled": events},
    )


def reading(cfg: Config, until: Any) -> tuple[Snapshot, str]:
    """Snapshots from one source (events on if the config says so) until `until(snap)`."""
    source = build_source(cfg, background=False)
    try:
        got: list[Snapshot] = []

        def ready() -> bool:
            got.append(source.collect())
            return bool(until(got[-1]))

        wait_for(ready, timeout=30, interval=0.3, what="the figures")
    finally:
        source.stop()
    snap = got[-1]
    return snap, render_snapshot(snap, version="t", kubernetes_enabled=False, broker="rabbitmq")


def test_timestamps_date_the_head_and_their_absence_is_unknown(
    rabbitmq: RabbitVhost, timestamped: float
) -> None:
    plain = make_app(rabbitmq.url)
    plain.conf.task_queue_max_priority = None  # FIFO: the head is the oldest message
    enqueue(plain, "batch1", 5, seconds=0, priorities=[0])
    enqueue(plain, "batch2", 5, seconds=0, priorities=[0])  # no timestamp
    t0 = time.time()
    snap, text = reading(
        cfg_for(rabbitmq), lambda s: all(s.queue(q).waiting == 5 for q in ("batch1", "batch2"))
    )
    age = sample(text, AGE, {"queue": "batch1"})
    assert age is not None and 100 <= age <= 100 + (snap.taken_at - t0) + 1.5
    # Unknown: no series, and null in the snapshot's JSON, never a false 0.
    assert sample(text, AGE, {"queue": "batch2"}) is None
    row = {q["queue"]: q for q in snap.to_json()["queues"]}["batch2"]  # type: ignore[index]
    assert row["oldest_age_seconds"] is None and row["waiting"] == 5
    assert Snapshot.from_json(snap.to_json()).queue("batch2").oldest_age_seconds is None  # type: ignore[union-attr]


def test_task_sent_events_date_what_the_broker_cannot(rabbitmq: RabbitVhost) -> None:
    cfg = cfg_for(rabbitmq, events=True)
    source = build_source(cfg, background=False)
    try:
        assert source.live is not None and source.live.consumer is not None
        consumer = source.live.consumer
        wait_for(lambda: consumer.up, timeout=20, what="the events consumer")
        sent_at = time.time()
        enqueue(make_app(rabbitmq.url, sent_events=True), "batch2", 4, seconds=0, priorities=[0])
        wait_for(
            lambda: consumer.view(time.time()).received >= 4, timeout=20, what="task-sent events"
        )
        got: list[Snapshot] = []
        wait_for(
            lambda: got.append(source.collect()) or got[-1].queue("batch2").waiting == 4,  # type: ignore[union-attr, func-returns-value]
            timeout=30,
            interval=0.3,
        )
    finally:
        source.stop()
    snap = got[-1]
    age = snap.queue("batch2").oldest_age_seconds  # type: ignore[union-attr]
    assert age is not None and 0 <= age <= snap.taken_at - sent_at + 0.5
    # batch1 holds nothing: 0, as on Redis.
    assert snap.queue("batch1").oldest_age_seconds == 0  # type: ignore[union-attr]
