"""Metric names the alerts and the dashboard query, taken from the metric tables.

The exporter's names come from `exporter.metrics` (a pure table). The autoscaler's
collector (autoscaler/metrics.py) builds its families inline, so its names are
repeated here; tests/test_alerts_rules.py collects that collector and fails when
a name or label set differs.
"""

from __future__ import annotations

from autoscaler.policy import Reason
from exporter import metrics as m

QUEUE_LENGTH = m.QUEUE_LENGTH.name
QUEUE_PRIORITY_LENGTH = m.QUEUE_PRIORITY_LENGTH.name
QUEUE_UNACKED = m.QUEUE_UNACKED.name
QUEUE_OLDEST_AGE = m.QUEUE_OLDEST_AGE.name
QUEUE_MEMORY = m.QUEUE_MEMORY.name
BROKER_UP = m.BROKER_UP.name
BROKER_MEMORY_USED = m.BROKER_MEMORY_USED.name
BROKER_MEMORY_MAX = m.BROKER_MEMORY_MAX.name
DEPLOYMENT_REPLICAS = m.DEPLOYMENT_REPLICAS.name
DEPLOYMENT_READY = m.DEPLOYMENT_READY.name
KUBERNETES_UP = m.KUBERNETES_UP.name
SCRAPE_DURATION = m.SCRAPE_DURATION.name
BUILD_INFO = m.BUILD_INFO.name
BATCH_CLAIMED = m.BATCH_CLAIMED.name
BATCH_CLAIM_EXPIRY = m.BATCH_CLAIM_EXPIRY.name

# Published by the autoscaler (issue 5).
AUTOSCALER_DESIRED = "celery_autoscaler_desired_replicas"
AUTOSCALER_MAX = "celery_autoscaler_max_replicas"
AUTOSCALER_DECISIONS = "celery_autoscaler_decisions_total"
AUTOSCALER_HOLD = "celery_autoscaler_hold"
AUTOSCALER_IS_LEADER = "celery_autoscaler_is_leader"

# Hold reasons that mean "a guard says a shared service is unhealthy" (issue 5 policy);
# other holds (cap, step limit, in-flight floor) are normal operation.
GUARD_HOLD_REASONS: tuple[str, ...] = (Reason.GUARD_HOLD.value, Reason.GUARD_SHED.value)

AUTOSCALER_NAMES: tuple[str, ...] = (
    AUTOSCALER_DESIRED,
    AUTOSCALER_MAX,
    AUTOSCALER_DECISIONS,
    AUTOSCALER_HOLD,
    AUTOSCALER_IS_LEADER,
)

# Prometheus' own per-target health series.
UP = "up"
