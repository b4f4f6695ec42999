"""Metric names, help texts and labels in one table, and the snapshot -> families mapping.

Alerts and dashboards depend on these names: change them only with a migration note.
Families are built anew on every scrape, so a queue that disappears from the snapshot
drops out of /metrics with no clean-up code.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from exporter.snapshot import Snapshot


@dataclass(frozen=True)
class Spec:
    name: str
    kind: Literal["gauge", "counter"]
    help: str
    labels: tuple[str, ...] = ()


QUEUE_LENGTH = Spec(
    "celery_queue_length",
    "gauge",
    "Messages waiting in the queue, summed over all priority lists.",
    ("queue",),
)
QUEUE_PRIORITY_LENGTH = Spec(
    "celery_queue_priority_length",
    "gauge",
    "Messages waiting in one priority list of the queue (only lists that exist).",
    ("queue", "priority"),
)
QUEUE_UNACKED = Spec(
    "celery_queue_unacked",
    "gauge",
    "Messages delivered to workers but not yet acknowledged (running or prefetched).",
    ("queue",),
)
QUEUE_OLDEST_AGE = Spec(
    "celery_queue_oldest_message_age_seconds",
    "gauge",
    "Age of the oldest waiting message (lower bound: since first seen); 0 when empty.",
    ("queue",),
)
QUEUE_MEMORY = Spec(
    "celery_queue_memory_bytes",
    "gauge",
    "Redis memory held by the queue's lists (MEMORY USAGE, sampled).",
    ("queue",),
)
BROKER_UP = Spec("celery_broker_up", "gauge", "1 if the last read of the broker succeeded.")
BROKER_MEMORY_USED = Spec(
    "celery_broker_memory_used_bytes", "gauge", "Redis used_memory from INFO memory."
)
BROKER_MEMORY_MAX = Spec(
    "celery_broker_memory_max_bytes", "gauge", "Redis maxmemory (0 means no limit)."
)
DEPLOYMENT_REPLICAS = Spec(
    "celery_deployment_replicas",
    "gauge",
    "Replicas asked for by the Deployment that consumes the queue (spec.replicas).",
    ("queue", "deployment"),
)
DEPLOYMENT_READY = Spec(
    "celery_deployment_ready_replicas",
    "gauge",
    "Ready replicas of the Deployment that consumes the queue (status.readyReplicas).",
    ("queue", "deployment"),
)
KUBERNETES_UP = Spec(
    "celery_kubernetes_up",
    "gauge",
    "1 if the Deployment cache is in sync with the Kubernetes API.",
)
SCRAPE_DURATION = Spec(
    "celery_exporter_scrape_duration_seconds",
    "gauge",
    "Time the last collection took.",
)
QUEUES_DROPPED = Spec(
    "celery_exporter_queues_dropped_total",
    "counter",
    "Discovered queues left out because broker.max_queues was reached, summed over scrapes.",
)
LAST_ERROR = Spec(
    "celery_exporter_last_scrape_error",
    "gauge",
    "1 if the last collection had an error with the named backend.",
    ("backend",),
)
BUILD_INFO = Spec(
    "celery_exporter_build_info",
    "gauge",
    "Always 1; labelled with the batchctl version.",
    ("version",),
)

ALL_SPECS: tuple[Spec, ...] = (
    QUEUE_LENGTH, QUEUE_PRIORITY_LENGTH, QUEUE_UNACKED, QUEUE_OLDEST_AGE, QUEUE_MEMORY,
    BROKER_UP, BROKER_MEMORY_USED, BROKER_MEMORY_MAX,
    DEPLOYMENT_REPLICAS, DEPLOYMENT_READY, KUBERNETES_UP,
    SCRAPE_DURATION, QUEUES_DROPPED, LAST_ERROR, BUILD_INFO,
)  # fmt: skip


def _family(spec: Spec) -> GaugeMetricFamily | CounterMetricFamily:
    # prometheus_client appends _total itself for counters.
    if spec.kind == "counter":
        return CounterMetricFamily(spec.name.removesuffix("_total"), spec.help, labels=spec.labels)
    return GaugeMetricFamily(spec.name, spec.help, labels=spec.labels)


def snapshot_families(
    snap: Snapshot, *, version: str, dropped_total: int, kubernetes_enabled: bool
) -> Iterator[Metric]:
    """All exporter metric families for one snapshot."""
    fam = {s.name: _family(s) for s in ALL_SPECS}

    def add(spec: Spec, value: float, *labels: str) -> None:
        fam[spec.name].add_metric(list(labels), value)

    # While the broker is down the queues are unknown: no series rather than false zeros.
    for q in snap.queues:
        add(QUEUE_LENGTH, q.waiting, q.queue)
        for step, n in sorted(q.priority_lengths.items()):
            add(QUEUE_PRIORITY_LENGTH, n, q.queue, str(step))
        add(QUEUE_UNACKED, q.unacked, q.queue)
        add(QUEUE_OLDEST_AGE, q.oldest_age_seconds, q.queue)
        add(QUEUE_MEMORY, q.memory_bytes, q.queue)
    for queue, dep in sorted(snap.deployments.items()):
        add(DEPLOYMENT_REPLICAS, dep.replicas, queue, dep.name)
        add(DEPLOYMENT_READY, dep.ready_replicas, queue, dep.name)
    add(BROKER_UP, 1.0 if snap.broker_up else 0.0)
    if snap.broker_memory_used_bytes is not None:
        add(BROKER_MEMORY_USED, snap.broker_memory_used_bytes)
    if snap.broker_memory_max_bytes is not None:
        add(BROKER_MEMORY_MAX, snap.broker_memory_max_bytes)
    if kubernetes_enabled:
        add(KUBERNETES_UP, 1.0 if snap.kubernetes_up else 0.0)
    add(SCRAPE_DURATION, snap.duration_seconds)
    add(QUEUES_DROPPED, dropped_total)
    add(LAST_ERROR, 0.0 if snap.broker_error is None else 1.0, "redis")
    if kubernetes_enabled:
        add(LAST_ERROR, 0.0 if snap.kubernetes_error is None else 1.0, "kubernetes")
    add(BUILD_INFO, 1.0, version)
    yield from fam.values()
