"""Every metric family batchctl publishes, in one table: name, type, help and labels.

The exporter's families (rendered by exporter/http/exposition.py) and the autoscaler's
(autoscaler/metrics.py) are both defined here; alerts/ and grafana/ read their names
from here, so a renamed family breaks the generators' tests instead of silently
breaking a rule. Alerts and dashboards depend on these names: change them only with
a migration note. Names follow Prometheus' conventions: base units, `_total` for
counters, `_up` for backends, `_build_info`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Spec:
    name: str
    kind: Literal["gauge", "counter", "histogram"]
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
    "Age of the oldest waiting message (lower bound: since first seen, or published); "
    "0 when empty; absent when the broker cannot date it.",
    ("queue",),
)
QUEUE_MEMORY = Spec(
    "celery_queue_memory_bytes",
    "gauge",
    "Broker memory held by the queue (Redis: MEMORY USAGE of its lists, sampled; "
    "RabbitMQ: the queue's memory).",
    ("queue",),
)
BROKER_UP = Spec("celery_broker_up", "gauge", "1 if the last read of the broker succeeded.")
BROKER_MEMORY_USED = Spec(
    "celery_broker_memory_used_bytes",
    "gauge",
    "Memory the broker uses (Redis used_memory; RabbitMQ mem_used of the node nearest "
    "its high watermark).",
)
BROKER_MEMORY_MAX = Spec(
    "celery_broker_memory_max_bytes",
    "gauge",
    "Memory the broker may use (Redis maxmemory, 0 means no limit; RabbitMQ the node's "
    "memory high watermark, mem_limit).",
)
# RabbitMQ's resource alarms: while one is raised, every publisher is blocked.
BROKER_ALARM = Spec(
    "celery_broker_alarm",
    "gauge",
    "1 while the broker's resource alarm is raised (RabbitMQ: memory, disk); publishers "
    "are blocked until it clears.",
    ("resource",),
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
# Replaced celery_exporter_queues_dropped_total (a counter that grew by the number of
# hidden queues at every scrape): see the migration note in docs/configuration.md.
QUEUES_DROPPED = Spec(
    "celery_exporter_queues_dropped",
    "gauge",
    "Discovered queues the cardinality cap (broker.max_queues) hides right now.",
)
QUEUES_SKIPPED = Spec(
    "celery_exporter_queues_skipped",
    "gauge",
    "Queues or binding members left out because of what they are, by reason "
    "(escaped_name_taken, malformed_binding, name_too_long).",
    ("reason",),
)
LAST_ERROR = Spec(
    "celery_exporter_last_scrape_error",
    "gauge",
    "1 if the last collection had an error with the named backend.",
    ("backend",),
)
BATCH_CLAIMED = Spec(
    "celery_batch_claimed",
    "gauge",
    "1 while the batch has a claim record (batchctl claim), labelled with its holder.",
    ("queue", "holder"),
)
BATCH_CLAIM_EXPIRY = Spec(
    "celery_batch_claim_expiry_timestamp_seconds",
    "gauge",
    "When the batch's claim expires (unix seconds).",
    ("queue",),
)
# Deadlines and cost of claims (issue 23): from the claim record and the batch's pace.
BATCH_FINISH_BY = Spec(
    "celery_batch_finish_by_timestamp_seconds",
    "gauge",
    "The deadline of the batch's claim (batchctl claim --finish-by), unix seconds.",
    ("queue",),
)
BATCH_EXPECTED_FINISH = Spec(
    "celery_batch_expected_finish_timestamp_seconds",
    "gauge",
    "When the work of a batch whose claim has a deadline would be done at its current "
    "pace (unix seconds); +Inf while work is left and nothing drains; absent with nothing "
    "left.",
    ("queue",),
)
BATCH_CLAIM_REPLICA_SECONDS = Spec(
    "celery_batch_claim_replica_seconds",
    "gauge",
    "Replica-seconds used under the batch's current claim, as the autoscaler recorded "
    "them in the claim.",
    ("queue",),
)
# Celery's task and worker events (events.enabled; exporter/events/).
EVENTS_UP = Spec(
    "celery_events_up",
    "gauge",
    "1 while the exporter consumes Celery events from the broker (events.enabled).",
)
EVENTS_RECEIVED = Spec(
    "celery_events_received_total",
    "counter",
    "Celery events consumed (task and worker events), since the exporter started.",
)
TASK_EVENTS = Spec(
    "celery_task_events_total",
    "counter",
    "Celery task events by queue, task name and state (sent, received, started, "
    "succeeded, failed, retried, rejected, revoked), since the exporter started.",
    ("queue", "task", "state"),
)
TASK_RUNTIME = Spec(
    "celery_task_runtime_seconds",
    "histogram",
    "Run time of tasks that succeeded, as their task-succeeded event reports it.",
    ("queue", "task"),
)
# Where the broker counts them (RabbitMQ); absent on Redis, which does not.
QUEUE_CONSUMERS = Spec(
    "celery_queue_consumers",
    "gauge",
    "Consumers subscribed to the queue, as the broker counts them (RabbitMQ).",
    ("queue",),
)
QUEUE_ACTIVE = Spec(
    "celery_queue_active_tasks",
    "gauge",
    "Tasks of the queue executing now, from task events reconciled with heartbeats.",
    ("queue",),
)
QUEUE_WORKERS = Spec(
    "celery_queue_workers",
    "gauge",
    "Workers consuming the queue now (alive by their heartbeats).",
    ("queue",),
)
# Of the in-flight messages (issue 19): ETA tasks held for later, and stranded ones.
QUEUE_SCHEDULED = Spec(
    "celery_queue_scheduled",
    "gauge",
    "Messages of the queue a worker holds for an ETA still in the future (ETA and "
    "countdown tasks, Celery's headers.eta), part of celery_queue_unacked (batches "
    "always, other queues while they have any).",
    ("queue",),
)
QUEUE_UNACKED_STRANDED = Spec(
    "celery_queue_unacked_stranded",
    "gauge",
    "Messages in unacked delivered longer ago than the visibility timeout while no live "
    "worker consumes the queue: nothing restores them until a worker of the broker starts "
    "(batches always, other queues while they have any past the timeout).",
    ("queue",),
)
# Buckets of celery_task_runtime_seconds: batch work, from 10 ms to an hour.
RUNTIME_BUCKETS: tuple[float, ...] = (
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0,
)  # fmt: skip
# The task states of celery_task_events_total, in the order a task goes through them.
TASK_STATES: tuple[str, ...] = (
    "sent", "received", "started", "succeeded", "failed", "retried", "rejected", "revoked",
)  # fmt: skip

BUILD_INFO = Spec(
    "celery_exporter_build_info",
    "gauge",
    "Always 1; labelled with the batchctl version.",
    ("version",),
)

# The autoscaler's families (autoscaler/metrics.py builds them from its last tick).
AUTOSCALER_DESIRED = Spec(
    "celery_autoscaler_desired_replicas",
    "gauge",
    "Replicas the autoscaler decided on at its last tick.",
    ("queue",),
)
AUTOSCALER_MAX = Spec(
    "celery_autoscaler_max_replicas",
    "gauge",
    "The batch's replica cap (max_replicas within the size bands).",
    ("queue",),
)
AUTOSCALER_HOLD = Spec(
    "celery_autoscaler_hold",
    "gauge",
    "1 while the autoscaler holds a batch that it would otherwise change, or cannot "
    "decide for it (no_data, replicas_unknown), by reason.",
    ("queue", "reason"),
)
AUTOSCALER_DECISIONS = Spec(
    "celery_autoscaler_decisions_total",
    "counter",
    "Decisions taken, by action (up/down/hold/none) and reason.",
    ("queue", "action", "reason"),
)
AUTOSCALER_ERRORS = Spec(
    "celery_autoscaler_errors_total",
    "counter",
    "Failures to read or act, by kind (backend, claims, guards, tick).",
    ("queue", "kind"),
)
AUTOSCALER_IS_LEADER = Spec(
    "celery_autoscaler_is_leader", "gauge", "1 if this instance is the one that scales."
)
AUTOSCALER_LAST_TICK = Spec(
    "celery_autoscaler_last_tick_timestamp_seconds", "gauge", "When the last tick finished."
)
AUTOSCALER_BUSY_STOPS = Spec(
    "celery_autoscaler_busy_stops_total",
    "counter",
    "Tasks running on replicas the autoscaler told to stop, by the busy map of Celery's "
    "events (0 is the aim; counted only where events show the replicas' tasks).",
    ("queue",),
)
AUTOSCALER_REPLICA_SECONDS = Spec(
    "celery_autoscaler_replica_seconds_total",
    "counter",
    "Replica-seconds of the batch: its replicas (spec.replicas) times the seconds they "
    "were asked for, counted by the leading autoscaler.",
    ("queue",),
)

# Prometheus' own per-target health series.
UP = "up"

EXPORTER_SPECS: tuple[Spec, ...] = (
    QUEUE_LENGTH, QUEUE_PRIORITY_LENGTH, QUEUE_UNACKED,
    QUEUE_SCHEDULED, QUEUE_UNACKED_STRANDED,
    QUEUE_OLDEST_AGE, QUEUE_MEMORY,
    BROKER_UP, BROKER_MEMORY_USED, BROKER_MEMORY_MAX,
    QUEUE_CONSUMERS, BROKER_ALARM,
    DEPLOYMENT_REPLICAS, DEPLOYMENT_READY, KUBERNETES_UP,
    BATCH_CLAIMED, BATCH_CLAIM_EXPIRY,
    BATCH_FINISH_BY, BATCH_EXPECTED_FINISH, BATCH_CLAIM_REPLICA_SECONDS,
    EVENTS_UP, EVENTS_RECEIVED, TASK_EVENTS, TASK_RUNTIME, QUEUE_ACTIVE, QUEUE_WORKERS,
    SCRAPE_DURATION, QUEUES_DROPPED, QUEUES_SKIPPED, LAST_ERROR, BUILD_INFO,
)  # fmt: skip

AUTOSCALER_SPECS: tuple[Spec, ...] = (
    AUTOSCALER_DESIRED, AUTOSCALER_MAX, AUTOSCALER_HOLD, AUTOSCALER_DECISIONS,
    AUTOSCALER_ERRORS, AUTOSCALER_IS_LEADER, AUTOSCALER_LAST_TICK,
    AUTOSCALER_BUSY_STOPS, AUTOSCALER_REPLICA_SECONDS,
)  # fmt: skip

ALL_SPECS: tuple[Spec, ...] = EXPORTER_SPECS + AUTOSCALER_SPECS
