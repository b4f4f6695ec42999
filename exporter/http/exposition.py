"""The exporter's exposition: a snapshot -> Prometheus text (0.0.4) or OpenMetrics.

The families are the table in batchctl/metrics.py. The exposition is rendered anew from
each snapshot, so a queue that disappears from the snapshot drops out of /metrics with
no clean-up code.
"""

from __future__ import annotations

from batchctl.metrics import (
    BATCH_CLAIM_EXPIRY,
    BATCH_CLAIM_REPLICA_SECONDS,
    BATCH_CLAIMED,
    BATCH_EXPECTED_FINISH,
    BATCH_FINISH_BY,
    BROKER_ALARM,
    BROKER_MEMORY_MAX,
    BROKER_MEMORY_USED,
    BROKER_UP,
    BUILD_INFO,
    DEPLOYMENT_READY,
    DEPLOYMENT_REPLICAS,
    EVENTS_RECEIVED,
    EVENTS_UP,
    KUBERNETES_UP,
    LAST_ERROR,
    QUEUE_ACTIVE,
    QUEUE_CONSUMERS,
    QUEUE_LENGTH,
    QUEUE_MEMORY,
    QUEUE_OLDEST_AGE,
    QUEUE_PRIORITY_LENGTH,
    QUEUE_SCHEDULED,
    QUEUE_UNACKED,
    QUEUE_UNACKED_STRANDED,
    QUEUE_WORKERS,
    QUEUES_DROPPED,
    QUEUES_SKIPPED,
    SCRAPE_DURATION,
    TASK_EVENTS,
    TASK_RUNTIME,
)
from exporter.events.model import EventsView
from exporter.http.textformat import Body, LineCache, _Writer
from exporter.snapshot import Snapshot
from exporter.stats import expected_finish


def render_snapshot(
    snap: Snapshot,
    *,
    version: str,
    kubernetes_enabled: bool,
    openmetrics: bool = False,
    cache: LineCache | None = None,
    broker: str = "redis",
) -> str:
    """All exporter metrics for one snapshot, as exposition text (render_body, decoded)."""
    body = render_body(
        snap,
        version=version,
        kubernetes_enabled=kubernetes_enabled,
        openmetrics=openmetrics,
        cache=cache,
        broker=broker,
    )
    return bytes(body).decode()


def render_body(
    snap: Snapshot,
    *,
    version: str,
    kubernetes_enabled: bool,
    openmetrics: bool = False,
    cache: LineCache | None = None,
    extra: bytes | None = None,
    broker: str = "redis",
) -> Body:
    """All exporter metrics for one snapshot: the /metrics body, UTF-8. `extra` is
    another whole exposition in the same format (prometheus_client's output for the
    registry beside the snapshot), appended in the same join. `broker` is the broker's
    kind, the `backend` label of its last_scrape_error ("redis", "rabbitmq").

    Rendered directly rather than through prometheus_client's families: with 1,000
    queues that is ~8,000 samples, and the generic path costs several times more
    than reading Redis does (benchmarks/README.md).
    """
    w = _Writer(openmetrics, cache)
    qs = snap.queues
    # Between generations only the ages change (see InProcessSource): the other per-queue
    # families are reused whole. The format changes meta lines (counter names, HELP escapes).
    gen = None if snap.generation is None else (snap.generation, openmetrics)
    # While the broker is down the queues are unknown: no series rather than false zeros.
    w.family_of(
        QUEUE_LENGTH, gen, lambda: w.family(QUEUE_LENGTH, (((q.queue,), q.waiting) for q in qs))
    )
    w.family_of(
        QUEUE_PRIORITY_LENGTH,
        gen,
        lambda: w.per_queue(QUEUE_PRIORITY_LENGTH, ((q.queue, q.priority_lengths) for q in qs)),
    )
    w.family_of(
        QUEUE_UNACKED, gen, lambda: w.family(QUEUE_UNACKED, (((q.queue,), q.unacked) for q in qs))
    )
    # The parts of in flight: for the batches always, for other queues while they have
    # any (with thousands of discovered queues two more series each, all 0, would cost
    # memory and time for nothing).
    w.family_of(
        QUEUE_SCHEDULED,
        gen,
        lambda: w.counts(
            QUEUE_SCHEDULED, ((q.queue, q.scheduled) for q in qs if q.configured or q.scheduled)
        ),
    )
    # Stranded depends on the events' live workers too, not only on the read.
    overdue = [q for q in qs if q.overdue]
    w.family_of(
        QUEUE_UNACKED_STRANDED,
        None if overdue else gen,
        lambda: w.counts(
            QUEUE_UNACKED_STRANDED,
            ((q.queue, snap.stranded(q.queue)) for q in qs if q.configured or q.overdue),
        ),
    )
    # An age the broker cannot tell is no series, never a false 0.
    w.family(
        QUEUE_OLDEST_AGE,
        (((q.queue,), q.oldest_age_seconds) for q in qs if q.oldest_age_seconds is not None),
    )
    w.family_of(
        QUEUE_MEMORY,
        gen,
        lambda: w.family(QUEUE_MEMORY, (((q.queue,), q.memory_bytes) for q in qs)),
    )
    w.family(BROKER_UP, [((), 1 if snap.broker_up else 0)])
    if snap.broker_memory_used_bytes is not None:
        w.family(BROKER_MEMORY_USED, [((), snap.broker_memory_used_bytes)])
    if snap.broker_memory_max_bytes is not None:
        w.family(BROKER_MEMORY_MAX, [((), snap.broker_memory_max_bytes)])
    # Only where the broker counts consumers (RabbitMQ): no false zeros on Redis.
    w.family_of(
        QUEUE_CONSUMERS,
        gen,
        lambda: w.family(
            QUEUE_CONSUMERS, (((q.queue,), q.consumers) for q in qs if q.consumers is not None)
        ),
    )
    w.family(BROKER_ALARM, (((r,), 1 if on else 0) for r, on in sorted(snap.broker_alarms.items())))
    deps = sorted(snap.deployments.items())
    w.family(DEPLOYMENT_REPLICAS, (((q, d.name), d.replicas) for q, d in deps))
    w.family(DEPLOYMENT_READY, (((q, d.name), d.ready_replicas) for q, d in deps))
    if kubernetes_enabled:
        w.family(KUBERNETES_UP, [((), 1 if snap.kubernetes_up else 0)])
    claims = sorted(snap.claims.items())
    w.family(BATCH_CLAIMED, (((q, c.holder), 1) for q, c in claims))
    w.family(BATCH_CLAIM_EXPIRY, (((q,), c.expires) for q, c in claims))
    deadlines = [(q, c.finish_by) for q, c in claims if c.finish_by is not None]
    w.family(BATCH_FINISH_BY, (((q,), t) for q, t in deadlines))
    expected = [(q, expected_finish(snap, q)) for q, _ in deadlines]
    w.family(BATCH_EXPECTED_FINISH, (((q,), t) for q, t in expected if t is not None))
    w.family(BATCH_CLAIM_REPLICA_SECONDS, (((q,), c.replica_seconds) for q, c in claims))
    if snap.events is not None:
        _events(w, snap.events)
    w.family(SCRAPE_DURATION, [((), snap.duration_seconds)])
    w.family(QUEUES_DROPPED, [((), snap.queues_dropped)])
    w.family(QUEUES_SKIPPED, (((r,), n) for r, n in sorted(snap.queues_skipped.items())))
    errors = [((broker,), 0 if snap.broker_error is None else 1)]
    if kubernetes_enabled:
        errors.append((("kubernetes",), 0 if snap.kubernetes_error is None else 1))
    w.family(LAST_ERROR, errors)
    w.family(BUILD_INFO, [((version,), 1)])
    return w.body(extra)


def _events(w: _Writer, ev: EventsView) -> None:
    """The events families. Counters always (they count what was seen); the gauges of
    what runs now only while the consumer is connected: unknown is no series, not 0."""
    w.family(EVENTS_UP, [((), 1 if ev.up else 0)])
    w.family(EVENTS_RECEIVED, [((), ev.received)])
    w.family(
        TASK_EVENTS,
        (((t.queue, t.task, state), n) for t in ev.tasks for state, n in sorted(t.states.items())),
    )
    w.histogram(
        TASK_RUNTIME,
        (
            ((t.queue, t.task), t.cumulative_buckets(), t.runtime_sum)
            for t in ev.tasks
            if t.runtime_buckets
        ),
    )
    if ev.up:
        w.family(QUEUE_ACTIVE, (((q.queue,), q.active) for q in ev.queues))
        w.family(QUEUE_WORKERS, (((q.queue,), q.workers) for q in ev.queues))
