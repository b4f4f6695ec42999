"""The autoscaler's vocabulary: what it did (`Action`) and why (`Reason`), in one table.

Each reason means exactly one situation, so that the decision counter
(`celery_autoscaler_decisions_total{action,reason}`), the hold gauge, the log line and
the status page tell an operator what happened without reading code. `MEANING` is the
one-line explanation the docs and the status page show.
"""

from __future__ import annotations

from enum import StrEnum


class Action(StrEnum):
    UP = "up"
    DOWN = "down"
    HOLD = "hold"  # a change was called for but something stopped it (see the reason)
    NONE = "none"  # nothing to change


class Reason(StrEnum):
    # Growing.
    FROM_ZERO = "from_zero"
    BACKLOG = "backlog"
    # Growth stopped.
    STEP_LIMIT = "step_limit"
    AT_CAP = "at_cap"
    BUDGET = "budget"
    GUARD_HOLD = "guard_hold"
    UNCLAIMED = "unclaimed"
    CLAIM_EXPIRED = "claim_expired"
    # Shrinking.
    ABOVE_CAP = "above_cap"
    GUARD_SHED = "guard_shed"
    IDLE_STEP_DOWN = "idle_step_down"
    STEP_DOWN = "step_down"
    IDLE_TO_ZERO = "idle_to_zero"
    # Shrinking stopped, or nothing to do.
    INFLIGHT_FLOOR = "inflight_floor"
    IDLE = "idle"
    STEADY = "steady"
    # Hands off.
    MANUAL_OVERRIDE = "manual_override"
    NO_DATA = "no_data"
    OBSERVE_ONLY = "observe_only"


MEANING: dict[Reason, str] = {
    Reason.FROM_ZERO: "work arrived for a batch at 0 replicas: start one",
    Reason.BACKLOG: "the backlog would take longer than target_drain_seconds: one step up",
    Reason.STEP_LIMIT: "wants to grow, but the last step up was less than a step interval ago",
    Reason.AT_CAP: "wants to grow, but the batch is at its cap (max_replicas)",
    Reason.BUDGET: "wants to grow, but autoscaler.global_max_replicas is shared out",
    Reason.GUARD_HOLD: "wants to grow, but a guard (DB, Redis, Elasticsearch...) is not healthy",
    Reason.UNCLAIMED: "has work, but nobody claimed the batch: never scaled up",
    Reason.CLAIM_EXPIRED: "the claim expired: no growth, and down to min_replicas once idle",
    Reason.ABOVE_CAP: "more replicas than the cap (config lowered): one down per step interval",
    Reason.GUARD_SHED: "a guard with shed: true is unhealthy: one down per step interval",
    Reason.IDLE_STEP_DOWN: "nothing waiting or in flight: one down per step interval, to 1",
    Reason.STEP_DOWN: "only in-flight work left, done soon with one fewer: one down",
    Reason.IDLE_TO_ZERO: "idle for idle_after_seconds: down to min_replicas",
    Reason.INFLIGHT_FLOOR: "would shrink, but the in-flight messages need these replicas",
    Reason.IDLE: "idle, waiting out idle_after_seconds before going to min_replicas",
    Reason.STEADY: "the backlog drains within the target: nothing to change",
    Reason.MANUAL_OVERRIDE: "someone else set the replicas: hands off for a while",
    Reason.NO_DATA: "the snapshot is missing, stale or the broker is down: change nothing",
    Reason.OBSERVE_ONLY: "batches[].autoscale is false: the decision is logged, never applied",
}

# Holds that mean "a shared service is unhealthy" (alerting on them is useful); the
# other holds (cap, step limit, in-flight floor) are normal operation.
GUARD_REASONS: tuple[Reason, ...] = (Reason.GUARD_HOLD, Reason.GUARD_SHED)
