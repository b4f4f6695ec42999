"""The policy's vocabulary: what it is told, what it observes, what it remembers, what it
decides.

Plain frozen dataclasses and three pure helpers for the batch's size limits. Nothing here
decides anything; `autoscaler.policy.steps` does. The policy's settings (`BatchPolicy`,
`PolicyConfig`) are its own records, built from the config by the caller
(autoscaler/policyconfig.py), so that the policy imports no config machinery.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Protocol

from batchctl.claims import Claim
from batchctl.reasons import Action, Reason


@dataclass(frozen=True, slots=True)
class BatchPolicy:
    """What the policy reads of one batch's config (`batches[]`, docs/configuration.md):
    the same names, units and meanings; autoscaler.policyconfig builds it from the config."""

    queue: str
    min_replicas: int
    max_replicas: int
    allow_big: bool  # above 10 replicas allowed (the "big" band)
    allow_over_20: bool
    step_up: int  # replicas per step up, at most
    step_interval_seconds: float
    target_drain_seconds: float
    idle_after_seconds: float
    require_claim: bool  # only a claimed batch grows
    manual_override_seconds: float
    startup_grace_seconds: float
    worker_concurrency: int  # the workers' --concurrency
    prefetch_multiplier: int  # Celery's worker_prefetch_multiplier
    max_task_seconds: float = 300.0  # the longest task (the pods' grace period)
    # A typical task's run time: the pace of a deadline until one is measured; None: unknown.
    task_seconds: float | None = None
    # The longest a step down waits for an idle replica (reason busy_workers).
    busy_wait_seconds: float = 900.0
    # With Celery's events: an idle batch goes to min_replicas at once when the recent gaps
    # between work were longer than its pods take to start (reason idle_gap).
    adaptive_idle: bool = True
    # At most one start from zero per this many seconds for work one replica drains within
    # target_drain_seconds (reason from_zero_interval); 0: start at once every time.
    from_zero_interval_seconds: float = 180.0


@dataclass(frozen=True, slots=True)
class PolicyConfig:
    """Every batch's `BatchPolicy` and the shared budget (`autoscaler.global_max_replicas`,
    replicas across all batches)."""

    batches: tuple[BatchPolicy, ...]
    global_max_replicas: int

    def batch(self, queue: str) -> BatchPolicy | None:
        return next((b for b in self.batches if b.queue == queue), None)


class SizeBands(Protocol):
    """A batch's size fields, as `BatchPolicy` and the config's `BatchConfig` both hold them."""

    @property
    def min_replicas(self) -> int: ...
    @property
    def max_replicas(self) -> int: ...
    @property
    def allow_big(self) -> bool: ...
    @property
    def allow_over_20(self) -> bool: ...
    @property
    def worker_concurrency(self) -> int: ...
    @property
    def prefetch_multiplier(self) -> int: ...


class GuardStatus(StrEnum):
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"
    UNKNOWN = "unknown"  # Prometheus unreachable or the query failed: counts as unhealthy


@dataclass(frozen=True, slots=True)
class GuardResult:
    """One guard's verdict at this tick (autoscaler.guards evaluates the PromQL)."""

    name: str
    status: GuardStatus
    shed: bool = False
    detail: str = ""  # what the query answered, for the decision's detail


@dataclass(frozen=True, slots=True)
class BatchObservation:
    """One batch as the exporter's snapshot shows it at this tick (autoscaler.observations).

    Counts are messages; replicas are the Deployment's (or the local backend's workers).
    """

    queue: str
    waiting: int  # messages in the queue's lists, all priorities
    in_flight: int  # delivered, not acknowledged (the broker's `unacked`)
    oldest_age_seconds: float
    replicas: int  # what the Deployment asks for (spec.replicas)
    ready_replicas: int
    claim: Claim | None = None
    guards: tuple[GuardResult, ...] = ()
    # False when the broker is unreachable or the snapshot is stale or missing: the
    # policy holds (`no_data`).
    data_ok: bool = True
    # False when the snapshot is fine but the batch's replica count is not known (its
    # Deployment not listed, the Kubernetes API down): the policy holds (`replicas_unknown`).
    replicas_known: bool = True
    # Why data_ok or replicas_known is False, in a few words, for the decision's detail.
    why: str = ""
    # Tasks executing now, by Celery's events (0 without them). With the default early
    # acknowledgement a running task is in no Redis structure, so only this shows it;
    # with acks_late it is also in `in_flight` (counted twice in `work`, never in the floor).
    active: int = 0
    # Tasks completed (succeeded + failed) so far by the events, a counter; None without
    # events. The throughput per replica comes from it when it is known.
    completed: int | None = None
    # The busy map (Celery's events, matched to the replicas by the backend): how many of
    # the batch's replicas hold no work, i.e. ready workers with no task running or
    # reserved, and pods not ready yet (a ReplicaSet removes those first anyway). None:
    # no busy map (events off, or no worker matched to a replica): a step down stops
    # whichever replicas Kubernetes picks, busy or not.
    idle_replicas: int | None = None

    # Of `in_flight`: held by a worker for an ETA still in the future (Celery's ETA and
    # countdown tasks: outside the prefetch limit, and not work that can be done now),
    # and stranded (delivered longer ago than the visibility timeout, no live worker
    # consuming the queue: no replica holds them, a new one restores them). Disjoint.
    scheduled: int = 0
    stranded: int = 0

    @property
    def held(self) -> int:
        """In flight in workers' prefetch windows: neither scheduled nor stranded."""
        return max(0, self.in_flight - self.scheduled - self.stranded)

    @property
    def work(self) -> int:
        """Everything that can be done now and is not done yet: waiting, in flight
        (scheduled messages excepted: they wait for their time) and running."""
        return self.waiting + max(0, self.in_flight - self.scheduled) + self.active

    @property
    def busy(self) -> int:
        """Work that workers hold: in flight (prefetched, or running with late acks) or
        running; scheduled messages excepted."""
        return max(0, self.in_flight - self.scheduled) + self.active


@dataclass(frozen=True, slots=True)
class BatchState:
    """What the policy remembers about one batch between ticks (times are `now` values)."""

    last_up_at: float | None = None
    last_down_at: float | None = None
    last_desired: int | None = None
    last_seen_replicas: int | None = None
    override_until: float | None = None
    idle_since: float | None = None  # waiting + in flight == 0 continuously since
    slack_since: float | None = None  # waiting == 0 continuously since
    prev_work: int | None = None
    prev_waiting: int | None = None
    prev_completed: int | None = None  # the events' completion counter at prev_at
    prev_at: float | None = None
    # Observed throughput per ready replica (messages/s, EWMA); negative: backlog growing.
    rate_per_replica: float | None = None
    # Fewer ready replicas than asked for, continuously since (pods starting, or not).
    not_ready_since: float | None = None
    # A step down has waited for an idle replica since (reason busy_workers).
    busy_since: float | None = None
    # How long the batch's pods take to become ready (seconds, EWMA of the last ones).
    startup_seconds: float | None = None
    # The gaps between work (autoscaler/policy/gaps.py): the start of the quiet period
    # now under way (nothing waiting, in flight or running, and no task came and went
    # since), and the last GAP_SAMPLES quiet periods' lengths in seconds, oldest first.
    quiet_since: float | None = None
    gaps: tuple[float, ...] = ()
    # When the policy last started the batch from 0 replicas (reason from_zero).
    started_from_zero_at: float | None = None

    @property
    def last_change_at(self) -> float | None:
        times = [t for t in (self.last_up_at, self.last_down_at) if t is not None]
        return max(times) if times else None


@dataclass(frozen=True, slots=True)
class PolicyState:
    """Every batch's `BatchState`, by queue name; the empty state is a fresh start."""

    batches: Mapping[str, BatchState] = field(default_factory=dict)

    def batch(self, queue: str) -> BatchState:
        return self.batches.get(queue) or BatchState()

    def change_not_applied(self, queue: str) -> PolicyState:
        """The actuator could not apply the last decision for `queue`.

        Without this the next tick would take the unchanged count for someone else's
        change (a manual override). The step timers are kept: a failed step up is retried
        one step interval later, never sooner.
        """
        bs = self.batches.get(queue)
        if bs is None:
            return self
        return PolicyState({**self.batches, queue: replace(bs, last_desired=bs.last_seen_replicas)})


@dataclass(frozen=True, slots=True)
class Decision:
    """The replica count for one batch at one tick, and why (batchctl.reasons.MEANING)."""

    queue: str
    desired: int
    current: int
    reason: Reason
    action: Action
    detail: str = ""  # one human sentence for the log line and status page

    @property
    def changed(self) -> bool:
        return self.desired != self.current


def effective_cap(batch: SizeBands) -> int:
    """max_replicas, clamped again by the size bands (the config validates this too)."""
    cap = batch.max_replicas
    if not batch.allow_big:
        cap = min(cap, 10)
    if not batch.allow_over_20:
        cap = min(cap, 20)
    return cap


def replica_capacity(batch: SizeBands) -> int:
    """Messages one replica can hold in flight: Celery's prefetch window."""
    return batch.worker_concurrency * batch.prefetch_multiplier


def inflight_floor(batch: SizeBands, in_flight: int, active: int = 0, scheduled: int = 0) -> int:
    """The fewest replicas that can hold `in_flight` messages and run `active` tasks, and
    keep `scheduled` ones, never below min_replicas. One replica holds at most its prefetch
    window in `unacked` and runs at most `worker_concurrency` tasks; the two bounds are
    taken separately, so a running task that is also in `unacked` (acks_late) is not
    counted twice. `in_flight` excludes the scheduled messages: a worker holds those
    outside its prefetch limit (Celery raises its QoS for each), so any one replica can
    keep them all (docs/design.md, "ETA tasks")."""
    held = math.ceil(max(0, in_flight) / replica_capacity(batch))
    running = math.ceil(max(0, active) / batch.worker_concurrency)
    return max(batch.min_replicas, held, running, 1 if scheduled > 0 else 0)
