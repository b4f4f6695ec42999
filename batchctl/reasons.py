"""The autoscaler's vocabulary: what it did (`Action`) and why (`Reason`), in one table.

Each reason means exactly one situation, so that the decision counter
(`celery_autoscaler_decisions_total{action,reason}`), the hold gauge, the log line and
the status page tell an operator what happened without reading code. `MEANING` is the
one-line explanation the docs and the status page show. The action says what came of
it: `up` or `down` when the count changed, `hold` when a change was called for but
stopped (a shrinking reason with `hold` is waiting out the step interval), `none` when
there was nothing to change. autoscaler/policy gives every rule and its reasons.
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
    REPLICAS_STARTING = "replicas_starting"
    REPLICAS_NOT_READY = "replicas_not_ready"
    UNCLAIMED = "unclaimed"
    CLAIM_EXPIRED = "claim_expired"
    DRAINING = "draining"
    # Shrinking.
    ABOVE_CAP = "above_cap"
    GUARD_SHED = "guard_shed"
    IDLE_STEP_DOWN = "idle_step_down"
    STEP_DOWN = "step_down"
    IDLE_TO_ZERO = "idle_to_zero"
    DRAINED = "drained"
    # Shrinking stopped, or nothing to do.
    INFLIGHT_FLOOR = "inflight_floor"
    IDLE = "idle"
    STEADY = "steady"
    # Hands off.
    MANUAL_OVERRIDE = "manual_override"
    NO_DATA = "no_data"
    REPLICAS_UNKNOWN = "replicas_unknown"
    OBSERVE_ONLY = "observe_only"
    OTHER_CONTROLLER = "other_controller"
    CONTROLLERS_UNKNOWN = "controllers_unknown"
    # A deadline (`batchctl claim --finish-by`) and the busy map (issue 23).
    DEADLINE = "deadline"
    DEADLINE_PACE = "deadline_pace"
    IDLE_REPLICAS = "idle_replicas"
    BUSY_WORKERS = "busy_workers"
    # Work that is not ordinary (issue 19).
    SCHEDULED = "scheduled"
    STRANDED = "stranded"
    # The gaps between work (autoscaler/policy/gaps.py).
    IDLE_GAP = "idle_gap"
    FROM_ZERO_INTERVAL = "from_zero_interval"


MEANING: dict[Reason, str] = {
    Reason.FROM_ZERO: "work arrived for a batch at 0 replicas: start one",
    Reason.BACKLOG: "the backlog would take longer than target_drain_seconds: one step up",
    Reason.STEP_LIMIT: "wants to grow, but the last step up was less than a step interval ago",
    Reason.AT_CAP: "wants to grow, but the batch is at its cap (max_replicas)",
    Reason.BUDGET: "wants to grow, but autoscaler.global_max_replicas is shared out",
    Reason.GUARD_HOLD: "wants to grow, but a guard (DB, Redis, Elasticsearch...) is not healthy",
    Reason.REPLICAS_STARTING: "wants to grow, but the last step's pods are still starting",
    Reason.REPLICAS_NOT_READY: (
        "wants to grow, but pods asked for have not become ready within "
        "startup_grace_seconds (no room in the cluster, crash-looping): no more of them"
    ),
    Reason.UNCLAIMED: "wants to grow (or start), but nobody claimed the batch",
    Reason.CLAIM_EXPIRED: "wants to grow (or start), but the batch's claim has expired",
    Reason.DRAINING: (
        "wants to grow, but the holder released the batch with --drain: finish the work "
        "with the replicas there are"
    ),
    Reason.ABOVE_CAP: "more replicas than the cap (config lowered): one down per step interval",
    Reason.GUARD_SHED: "a guard with shed: true is unhealthy: one down per step interval to 1",
    Reason.IDLE_STEP_DOWN: "nothing waiting, in flight or running: one down per step interval to 1",
    Reason.STEP_DOWN: (
        "only in-flight or running work left, done soon with one fewer: one down per interval"
    ),
    Reason.IDLE_TO_ZERO: (
        "nothing waiting, in flight or running for idle_after_seconds: to min_replicas"
    ),
    Reason.DRAINED: (
        "a draining batch has nothing waiting, in flight or running: to min_replicas at "
        "once; the autoscaler then ends the claim"
    ),
    Reason.INFLIGHT_FLOOR: (
        "would shrink, but the in-flight messages (and running tasks) need these replicas"
    ),
    Reason.IDLE: "idle, waiting out idle_after_seconds before going to min_replicas",
    Reason.STEADY: "nothing calls for a change: no backlog beyond the target, no step down due",
    Reason.MANUAL_OVERRIDE: (
        "the replicas were set by hand (`batchctl scale` by the claim's holder, until when it "
        "says, or anyone else: manual_override_seconds): hands off meanwhile"
    ),
    Reason.NO_DATA: "the snapshot is missing, stale or the broker is down: change nothing",
    Reason.REPLICAS_UNKNOWN: (
        "the batch's replica count is unknown (Deployment not found, Kubernetes API "
        "down): change nothing"
    ),
    Reason.OBSERVE_ONLY: "batches[].autoscale is false: the decision is logged, never applied",
    Reason.OTHER_CONTROLLER: (
        "another controller scales the batch's Deployment (a HorizontalPodAutoscaler, a "
        "KEDA ScaledObject, named in the detail): hands off, never a second writer"
    ),
    Reason.CONTROLLERS_UNKNOWN: (
        "would change, but whether an HPA or a KEDA ScaledObject scales the Deployment "
        "cannot be read (API down, RBAC): change nothing"
    ),
    Reason.DEADLINE: (
        "the claim's deadline (--finish-by) needs more replicas than there are: one step "
        "up, to the fewest that finish in time"
    ),
    Reason.DEADLINE_PACE: (
        "fewer replicas still finish by the claim's deadline (--finish-by): one down per "
        "step interval, the gentlest load on what the workers share"
    ),
    Reason.IDLE_REPLICAS: (
        "nothing waiting, and replicas the busy map shows idle while others finish their "
        "tasks: those idle replicas go"
    ),
    Reason.BUSY_WORKERS: (
        "would shrink, but every replica runs or holds tasks (busy map from Celery's "
        "events): waiting for one to be idle, at most busy_wait_seconds"
    ),
    Reason.SCHEDULED: (
        "the only work left is scheduled (ETA and countdown tasks held for a later "
        "time): one replica keeps them all, to it after idle_after_seconds"
    ),
    Reason.STRANDED: (
        "messages in unacked are older than the visibility timeout and no worker runs: "
        "one replica, whose kombu restores them to the queue"
    ),
    Reason.IDLE_GAP: (
        "idle, and the recent gaps between work (Celery's events) were longer than a pod "
        "takes to start: to min_replicas now, not after idle_after_seconds"
    ),
    Reason.FROM_ZERO_INTERVAL: (
        "small work waits at 0 replicas: the last start from zero was less than "
        "from_zero_interval_seconds ago, and one replica drains it within the target"
    ),
}

# Holds that mean "a shared service is unhealthy" (alerting on them is useful); the
# other holds (cap, step limit, in-flight floor) are normal operation.
GUARD_REASONS: tuple[Reason, ...] = (Reason.GUARD_HOLD, Reason.GUARD_SHED)
