"""Celery's events over AMQP: Celery's own receiver on RabbitMQ, as the monitoring user.

Real `celery worker -E` processes and a real producer on a RabbitMQ vhost of the test's
own; the consumer connects with the least permissions docs/operations.md lists (its
own `celeryev.*` queue, the `celery.pidbox` broadcast), and counts exactly what ran.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from batchctl.demo.tasks import FAIL_TASK, TASK_NAME, make_app
from exporter.events.consumer import EventsConsumer
from tests.support.servers.rabbitmq import RabbitVhost
from tests.support.servers.redis import RedisServer
from tests.support.waits import wait_for
from tests.support.workers import (
    Worker,
    activity,
    events_config,
    task_stats,
    wait_connected,
    wait_workers,
    workers,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


def test_events_over_amqp_are_counted_exactly(
    rabbitmq: RabbitVhost, redis_server: RedisServer, tmp_path: Path
) -> None:
    cfg = events_config(rabbitmq.monitor_url)
    consumer = EventsConsumer(cfg)
    consumer.start()
    try:
        wait_connected(consumer, timeout=20)
        app = make_app(rabbitmq.url, sent_events=True)
        with workers(tmp_path) as started:
            started.append(
                Worker(
                    rabbitmq.url, "batch1", "batch1@amqp-events", tmp_path / "w.log",
                    concurrency=2, record_url=redis_server.url,
                )
            )  # fmt: skip
            wait_workers(consumer, "batch1", 1)
            for _ in range(25):
                app.tasks[TASK_NAME].apply_async(args=(0.02,), queue="batch1")
            for _ in range(3):
                app.tasks[FAIL_TASK].apply_async(args=(0.0,), queue="batch1")
            wait_for(
                lambda: activity(consumer, "batch1").completed == 28,
                60,
                what="25 successes and 3 failures",
            )
            time.sleep(0.5)  # anything more would arrive now: there must be nothing
            work, fail = (
                task_stats(consumer, "batch1", TASK_NAME),
                task_stats(consumer, "batch1", FAIL_TASK),
            )
            assert dict(work.states) == {
                "sent": 25, "received": 25, "started": 25, "succeeded": 25,
            }  # fmt: skip
            assert dict(fail.states) == {"sent": 3, "received": 3, "started": 3, "failed": 3}
            assert activity(consumer, "batch1").workers == 1
            assert work.runtime_count == 25
    finally:
        consumer.stop()
    assert consumer.error is None or consumer.up is False
