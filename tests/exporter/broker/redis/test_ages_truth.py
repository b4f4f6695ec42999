"""The exported age against the truth: messages that carry their own send time.

A real Celery producer puts each task's send time in its kwargs, on two priority lists;
a real `celery worker` (concurrency 1) consumes them more slowly than they come, then as
fast, then the producer stops: the queue grows, grows and drains at once, and drains.
The exporter's source collects every INTERVAL seconds on the real clock. At every
sample after the first, the exported age of the queue is within one collection interval
of the true age of its oldest waiting message, never above it.

The truth is read from the queue's own lists (the tail of each priority list, its send
time), just before and just after each collection: kombu's lists are FIFO and consumers
take the tails, so the oldest send time only moves forward, and the truth at the
collection lies between the two readings.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from batchctl.demo.tasks import TASK_NAME, make_app
from exporter.broker.redis.keys import priority_list_name
from exporter.broker.redis.reader import RedisReader
from exporter.collect import InProcessSource
from tests.support.config import config_for
from tests.support.servers.redis import RedisServer
from tests.support.workers import Worker, workers

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(180)]
QUEUE = "batch1"
STEPS = (0, 3, 6, 9)
INTERVAL = 1.0
TASK_SECONDS = 0.25  # the worker's pace: about 4 messages/s
# Never above the truth: a message the read finds new is dated on the answer's side of
# the round trip (exporter/broker/redis/reader.py), after its push. Below the truth by at
# most one interval plus the read's own time (the round trip and the locate calls, a few
# milliseconds; this slack on the low side only).
READ_SLACK = 0.05


def sent_at(raw: bytes) -> float:
    """The send time the producer put in the task's kwargs (task protocol 2 body)."""
    body = json.loads(base64.b64decode(json.loads(raw)["body"]))
    return float(body[1]["payload"])


def oldest_sent(r: redis.Redis) -> float | None:
    """The send time of the oldest waiting message: the oldest of the lists' tails."""
    tails = [r.lindex(priority_list_name(QUEUE, s), -1) for s in STEPS]
    times = [sent_at(t) for t in tails if t]
    return min(times) if times else None


class Producer(threading.Thread):
    """Sends tasks at `rate` per second, alternating priorities 0 and 9, each with its
    send time, until told to stop (`rate` may change while it runs)."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.app = make_app(url)
        self.rate = 0.0
        self.sent = 0
        self.stop = threading.Event()

    def run(self) -> None:
        task = self.app.tasks[TASK_NAME]
        with self.app.producer_or_acquire() as producer:
            while not self.stop.is_set():
                if self.rate <= 0:
                    self.stop.wait(0.05)
                    continue
                task.apply_async(
                    args=(TASK_SECONDS,),
                    kwargs={"payload": repr(time.time())},
                    queue=QUEUE,
                    priority=9 * (self.sent % 2),
                    producer=producer,
                )
                self.sent += 1
                self.stop.wait(1 / self.rate)


@pytest.fixture
def producer(redis_server: RedisServer) -> Iterator[Producer]:
    p = Producer(redis_server.url)
    p.start()
    try:
        yield p
    finally:
        p.stop.set()
        p.join(5)


def test_age_stays_within_one_interval_of_the_truth(
    producer: Producer, redis_server: RedisServer, redis_db: redis.Redis, tmp_path: Path
) -> None:
    cfg = config_for(redis_server.url, [QUEUE])
    source = InProcessSource(cfg, RedisReader(cfg.broker))
    samples: list[tuple[str, float, float, float, float]] = []  # phase, age, low, high, dt
    last_at: float | None = None

    def collect(phase: str, seconds: float) -> None:
        nonlocal last_at
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            before = oldest_sent(redis_db)
            snap = source.collect()
            after = oldest_sent(redis_db)
            q = snap.queue(QUEUE)
            assert q is not None
            if last_at is not None and before is not None and after is not None:
                # The truth at the collection is between these two.
                low, high = snap.taken_at - after, snap.taken_at - before
                samples.append((phase, q.oldest_age_seconds, low, high, snap.taken_at - last_at))
            last_at = snap.taken_at
            time.sleep(max(0.0, INTERVAL - (time.time() - snap.taken_at)))

    with workers(tmp_path) as started:
        started.append(
            Worker(redis_server.url, QUEUE, "ages@test", tmp_path / "w.log", concurrency=1)
        )
        producer.rate = 9.0  # twice the worker's pace: the queue grows
        collect("grows", 10)
        producer.rate = 4.0  # about the worker's pace: grows and drains at once
        collect("both", 6)
        producer.rate = 0.0  # drains
        collect("drains", 8)
    source.stop()

    phases = {p for p, *_ in samples}
    assert phases == {"grows", "both", "drains"}, samples
    assert max(high for _, _, _, high, _ in samples) > 5 * INTERVAL  # a real backlog
    bad = [
        s
        for s in samples
        if not (s[2] - s[4] - READ_SLACK <= s[1] <= s[3])  # low - dt .. high, never above
    ]
    assert bad == [], f"(phase, age, truth low, truth high, interval) outside the bound: {bad}"
