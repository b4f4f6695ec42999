"""The scaling policy: a pure function from what we observe to how many replicas each batch gets.

`decide(observations, state, config, now) -> (decisions, new_state)` does no I/O and never
reads a clock: the live loop, the simulator and the tests all call it unchanged. It follows
the operations page ("scale up slowly while watching the DB, Redis and Elasticsearch, never
past about 20, back to zero when done") with the safety habits of the Kubernetes HPA's
replica calculator: rate limits, clamps, a reason for every decision, and "when data is
missing, do whatever argues against scaling".

Per batch and per tick, in order of precedence:

1. `no_data`: broker unreachable or snapshot stale -> change nothing.
2. `manual_override`: the replica count is not what we last asked for, so someone else
   changed it -> leave it alone for `manual_override_seconds`. (The loop reports a patch
   that failed with `PolicyState.change_not_applied`, or it reads the same.)
3. `cap`: above the batch's cap (config lowered, override ended) -> one replica down per tick.
4. Waiting work at 0 replicas -> `from_zero` (1 replica) on the first tick that sees it,
   if the batch is claimed, every guard is healthy and the budget has room.
5. A guard that is unhealthy with `shed: true` -> `guard_shed`, one replica down per step
   interval, not below 1 nor the in-flight floor (unknown results hold but never shed:
   shedding is a scaling action too, and a Prometheus outage must not drain every batch).
6. Backlog: while the work would take longer than `target_drain_seconds` at the observed
   per-replica throughput -> up by at most `step_up` per `step_interval_seconds`
   (`backlog`), unless a guard is not healthy (`guard_hold`), the batch is not claimed
   (`unclaimed`, `claim_expired`), the cap (`cap`) or the shared budget (`budget`) is
   reached, or the last step is too recent (`step_limit`).
7. Nothing waiting: to `min_replicas` once waiting + in flight has been 0 continuously for
   `idle_after_seconds` (`idle_to_zero`, or `claim_expired` for an expired claim);
   otherwise, idle on two ticks running, one replica down per tick to 1; or, with work
   still in flight, one replica down per step interval once nothing has waited for a
   whole interval and the rest would be done within an interval with one replica fewer
   (`step_down`), never below the in-flight floor (`inflight_floor`).

Afterwards the shared budget (`global_max_replicas`): decisions that do not grow use it
first, then the room left goes to growing batches one replica at a time, fewest replicas
first (max-min fairness; ties by queue name); a batch that gets less says `budget`. The
budget only limits growth, it never forces a batch down.

With Celery's default early acknowledgement a running task has left `unacked`, so "idle"
means nothing waiting and nothing prefetched: a busy but unsaturated batch can look idle
and go to zero; its running tasks still finish within the grace period. Workers with
`task_acks_late=True` make running tasks visible (benchmarks/README.md compares both).

The in-flight floor: one replica holds at most `worker_concurrency * prefetch_multiplier`
messages in the broker's `unacked` hash (Celery's prefetch window), so the fewest replicas
that can hold the observed in-flight work is ceil(in_flight / that). We never shrink below
it. Shrinking is still safe only because a removed worker's warm shutdown returns its
prefetched messages and finishes its running ones within the pod's grace period, which the
manifests derive from `max_task_seconds`.

Throughput: messages carry no timestamps and the exporter does not count completions, so
the per-replica throughput is estimated from the fall of waiting + in flight between ticks
while there was a queue to work on, divided by the ready replicas (an EWMA). Arrivals during
the interval make it an underestimate, which errs towards scaling up; a queue that grows
gives a negative estimate, i.e. "never drains" -> scale up.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum

from batchctl.claims import Claim
from batchctl.config import BatchConfig, Config
from batchctl.reasons import Action, Reason

# Time constant of the throughput EWMA: about one default step interval, so that a step's
# effect is mostly visible before the next step is considered.
RATE_TAU_SECONDS = 60.0


class GuardStatus(StrEnum):
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"
    UNKNOWN = "unknown"  # Prometheus unreachable or the query failed: counts as unhealthy


@dataclass(frozen=True, slots=True)
class GuardResult:
    name: str
    status: GuardStatus
    shed: bool = False


@dataclass(frozen=True, slots=True)
class BatchObservation:
    queue: str
    waiting: int  # messages in the queue's lists, all priorities
    in_flight: int  # delivered, not acknowledged (the broker's `unacked`)
    oldest_age_seconds: float
    replicas: int  # what the Deployment asks for (spec.replicas)
    ready_replicas: int
    claim: Claim | None = None
    guards: tuple[GuardResult, ...] = ()
    # False when the broker is unreachable or the snapshot is stale: the policy holds.
    data_ok: bool = True

    @property
    def work(self) -> int:
        return self.waiting + self.in_flight


@dataclass(frozen=True, slots=True)
class BatchState:
    """What the policy remembers about one batch between ticks."""

    last_up_at: float | None = None
    last_down_at: float | None = None
    last_desired: int | None = None
    last_seen_replicas: int | None = None
    override_until: float | None = None
    idle_since: float | None = None  # waiting + in flight == 0 continuously since
    slack_since: float | None = None  # waiting == 0 continuously since
    prev_work: int | None = None
    prev_waiting: int | None = None
    prev_at: float | None = None
    # Observed throughput per ready replica (messages/s, EWMA); negative: backlog growing.
    rate_per_replica: float | None = None

    @property
    def last_change_at(self) -> float | None:
        times = [t for t in (self.last_up_at, self.last_down_at) if t is not None]
        return max(times) if times else None


@dataclass(frozen=True, slots=True)
class PolicyState:
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
    queue: str
    desired: int
    current: int
    reason: Reason
    action: Action
    detail: str = ""  # one human sentence for the log line and status page

    @property
    def changed(self) -> bool:
        return self.desired != self.current


def effective_cap(batch: BatchConfig) -> int:
    """max_replicas, clamped again by the size bands (the config validates this too)."""
    cap = batch.max_replicas
    if not batch.allow_big:
        cap = min(cap, 10)
    if not batch.allow_over_20:
        cap = min(cap, 20)
    return cap


def replica_capacity(batch: BatchConfig) -> int:
    """Messages one replica can hold in flight: Celery's prefetch window."""
    return batch.worker_concurrency * batch.prefetch_multiplier


def inflight_floor(batch: BatchConfig, in_flight: int) -> int:
    """The fewest replicas that can hold `in_flight` messages, and never below min_replicas."""
    need = math.ceil(max(0, in_flight) / replica_capacity(batch))
    return max(batch.min_replicas, need)


def decide(
    observations: Iterable[BatchObservation],
    state: PolicyState,
    config: Config,
    now: float,
) -> tuple[list[Decision], PolicyState]:
    """One tick: a decision per configured batch observed, and the state for the next tick.

    Observations of queues that are not configured batches are ignored; configured
    batches without an observation keep their state and get no decision.
    """
    proposals: list[tuple[Decision, BatchState, BatchObservation]] = []
    for obs in observations:
        batch = config.batch(obs.queue)
        if batch is None:
            continue
        decision, tracked = _decide_batch(obs, state.batch(obs.queue), batch, now)
        proposals.append((decision, tracked, obs))

    decisions = _apply_budget([p[0] for p in proposals], config.autoscaler.global_max_replicas)

    batches = dict(state.batches)
    for decision, (_, tracked, obs) in zip(decisions, proposals, strict=True):
        batches[decision.queue] = _remember(tracked, decision, obs, now)
    return decisions, PolicyState(batches)


def _decide_batch(
    obs: BatchObservation, bs: BatchState, b: BatchConfig, now: float
) -> tuple[Decision, BatchState]:
    """The batch's own decision before the shared budget, and its updated trackers."""
    current = obs.replicas

    def out(desired: int, reason: Reason, detail: str, action: Action | None = None) -> Decision:
        if action is None:
            action = (
                Action.UP
                if desired > current
                else Action.DOWN
                if desired < current
                else Action.NONE
            )
        return Decision(obs.queue, desired, current, reason, action, detail)

    if not obs.data_ok:
        # No continuity across a gap: idle and slack timers and the rate start over.
        gap = replace(bs, idle_since=None, slack_since=None, prev_work=None, prev_at=None)
        return out(current, Reason.NO_DATA, "broker unreachable or snapshot stale"), gap

    tracked = _track(obs, bs, now)

    # The count is not what we asked for: someone else changed it. (A change of ours that
    # did not land must be reported with `PolicyState.change_not_applied`, or it reads
    # the same.)
    if bs.last_desired is not None and current != bs.last_desired:
        tracked = replace(tracked, override_until=now + b.manual_override_seconds)
    if tracked.override_until is not None and now < tracked.override_until:
        left = tracked.override_until - now
        detail = f"replicas set to {current} by someone else; hands off for {left:.0f}s"
        return out(current, Reason.MANUAL_OVERRIDE, detail), tracked

    cap = effective_cap(b)
    floor = inflight_floor(b, obs.in_flight)
    active = obs.claim is not None and not obs.claim.expired(now)
    may_grow = active or not b.require_claim
    no_claim = Reason.CLAIM_EXPIRED if obs.claim is not None else Reason.UNCLAIMED
    blocked = [g.name for g in obs.guards if g.status != GuardStatus.HEALTHY]
    shedding = [g.name for g in obs.guards if g.status == GuardStatus.UNHEALTHY and g.shed]
    step_open = bs.last_up_at is None or now - bs.last_up_at >= b.step_interval_seconds
    down_open = bs.last_change_at is None or now - bs.last_change_at >= b.step_interval_seconds

    if current > cap:
        if current - 1 < floor:
            return out(current, Reason.INFLIGHT_FLOOR, f"above cap {cap}", Action.HOLD), tracked
        return out(max(cap, floor, current - 1), Reason.ABOVE_CAP, f"above cap {cap}"), tracked

    if current == 0 and obs.waiting > 0:
        if not may_grow:
            # Reported, not scaled: a batch nobody holds never starts on its own.
            return out(0, no_claim, f"{obs.waiting} waiting, not scaled", Action.HOLD), tracked
        if blocked:
            return out(0, Reason.GUARD_HOLD, _guards(blocked), Action.HOLD), tracked
        if cap == 0:
            return out(0, Reason.AT_CAP, "cap is 0", Action.HOLD), tracked
        return out(1, Reason.FROM_ZERO, f"{obs.waiting} waiting"), tracked

    if shedding and current > 0:
        if current - 1 < floor:
            detail = f"{_guards(shedding)}; {obs.in_flight} in flight need {floor}"
            return out(current, Reason.INFLIGHT_FLOOR, detail, Action.HOLD), tracked
        if current == 1:
            # Shedding lightens the load; stopping a batch is for the idle rule alone.
            detail = f"{_guards(shedding)}; shedding stops at 1"
            return out(current, Reason.GUARD_SHED, detail, Action.HOLD), tracked
        if not down_open:
            return out(current, Reason.GUARD_SHED, _guards(shedding), Action.HOLD), tracked
        return out(current - 1, Reason.GUARD_SHED, _guards(shedding)), tracked

    if obs.waiting > 0 and current > 0:
        eta = _eta(obs.work, tracked.rate_per_replica, current)
        if eta > b.target_drain_seconds:
            want = _replicas_for_target(obs.work, tracked.rate_per_replica, b, current)
            detail = (
                f"{obs.waiting} waiting, drain in {_fmt_eta(eta)} > {b.target_drain_seconds:.0f}s"
            )
            if not may_grow:
                return out(current, no_claim, detail, Action.HOLD), tracked
            if blocked:
                return out(current, Reason.GUARD_HOLD, _guards(blocked), Action.HOLD), tracked
            if current >= cap:
                return out(current, Reason.AT_CAP, f"{detail}; at cap {cap}", Action.HOLD), tracked
            if not step_open:
                return out(current, Reason.STEP_LIMIT, detail, Action.HOLD), tracked
            desired = min(want, current + b.step_up, cap)
            if desired == cap and want > cap:
                detail = f"{detail}; reaching cap {cap}"
            return out(desired, Reason.BACKLOG, detail), tracked
        reason = Reason.STEADY if may_grow else no_claim
        return out(current, reason, f"drain in {_fmt_eta(eta)}"), tracked

    if obs.waiting == 0 and current > b.min_replicas:
        idle_for = now - tracked.idle_since if tracked.idle_since is not None else 0.0
        if tracked.idle_since is not None and idle_for >= b.idle_after_seconds:
            reason = (
                Reason.CLAIM_EXPIRED
                if obs.claim is not None and not active
                else Reason.IDLE_TO_ZERO
            )
            return out(b.min_replicas, reason, f"idle for {idle_for:.0f}s"), tracked
        if idle_for > 0 and current > max(1, b.min_replicas):
            # Idle on two ticks running: nothing to protect, one replica per tick down to
            # one, which waits out idle_after for the last step to zero.
            return out(current - 1, Reason.IDLE_STEP_DOWN, f"idle for {idle_for:.0f}s"), tracked
        slack_for = now - tracked.slack_since if tracked.slack_since is not None else 0.0
        # The backlog is small when what is left would be done within one step interval
        # even with one replica fewer; until then a removed replica only hands its
        # prefetched messages to busy neighbours and the tail gets longer.
        eta_one_less = _eta(obs.work, tracked.rate_per_replica, current - 1)
        small = eta_one_less <= b.step_interval_seconds
        if current > 1 and slack_for >= b.step_interval_seconds and down_open and small:
            if max(floor, 1) >= current:
                detail = f"{obs.in_flight} in flight need {floor}"
                return out(current, Reason.INFLIGHT_FLOOR, detail, Action.HOLD), tracked
            detail = f"nothing waiting for {slack_for:.0f}s, rest done in {_fmt_eta(eta_one_less)}"
            return out(current - 1, Reason.STEP_DOWN, detail), tracked
        if tracked.idle_since is not None:
            left = b.idle_after_seconds - idle_for
            return out(current, Reason.IDLE, f"idle; to {b.min_replicas} in {left:.0f}s"), tracked

    reason = Reason.STEADY if may_grow or current == 0 else no_claim
    return out(current, reason, ""), tracked


def _track(obs: BatchObservation, bs: BatchState, now: float) -> BatchState:
    """Advance the idle and slack timers and the throughput estimate."""
    work = obs.work
    idle_since = (bs.idle_since if bs.idle_since is not None else now) if work == 0 else None
    slack_since = (
        (bs.slack_since if bs.slack_since is not None else now) if obs.waiting == 0 else None
    )
    rate = bs.rate_per_replica
    if (
        bs.prev_at is not None
        and bs.prev_work is not None
        and now > bs.prev_at
        and obs.ready_replicas > 0
        # Only while there was a queue: an empty queue's fall says nothing about capacity.
        and (bs.prev_waiting or 0) > 0
    ):
        dt = now - bs.prev_at
        sample = (bs.prev_work - work) / dt / obs.ready_replicas
        alpha = 1.0 - math.exp(-dt / RATE_TAU_SECONDS)
        rate = sample if rate is None else rate + alpha * (sample - rate)
    return replace(
        bs,
        idle_since=idle_since,
        slack_since=slack_since,
        prev_work=work,
        prev_waiting=obs.waiting,
        prev_at=now,
        rate_per_replica=rate,
    )


def _eta(work: int, rate_per_replica: float | None, replicas: int) -> float:
    """Seconds to drain `work` at the observed pace; inf when unknown or not draining."""
    if work <= 0:
        return 0.0
    if rate_per_replica is None or rate_per_replica <= 0 or replicas <= 0:
        return math.inf
    return work / (rate_per_replica * replicas)


def _replicas_for_target(
    work: int, rate_per_replica: float | None, b: BatchConfig, current: int
) -> int:
    """Replicas that would drain `work` within the target; one step more when unknown."""
    if rate_per_replica is None or rate_per_replica <= 0:
        return current + b.step_up
    need = work / (rate_per_replica * b.target_drain_seconds)
    # A vanishing rate gives a huge or infinite need; callers clamp to step and cap anyway.
    return max(current + 1, math.ceil(min(need, 1e6)))


def _apply_budget(proposals: Sequence[Decision], budget: int) -> list[Decision]:
    """Share the global budget: scale-ups are granted one replica at a time, smallest first.

    Decisions that do not grow keep their count and use budget first; the remaining room
    goes to growing batches by max-min fairness (the batch with the fewest replicas gets
    the next one, ties by queue name). The budget never forces a batch down.
    """
    ups = [p for p in proposals if p.desired > p.current]
    if not ups:
        return list(proposals)
    used = sum(p.desired for p in proposals if p.desired <= p.current)
    granted = {p.queue: p.current for p in ups}
    room = budget - used - sum(granted.values())
    while room > 0:
        wanting = [p for p in ups if granted[p.queue] < p.desired]
        if not wanting:
            break
        pick = min(wanting, key=lambda p: (granted[p.queue], p.queue))
        granted[pick.queue] += 1
        room -= 1
    out = []
    for p in proposals:
        if p.desired > p.current and granted[p.queue] < p.desired:
            got = granted[p.queue]
            action = Action.UP if got > p.current else Action.HOLD
            detail = f"global budget {budget} shared; wanted {p.desired}"
            p = replace(p, desired=got, reason=Reason.BUDGET, action=action, detail=detail)
        out.append(p)
    return out


def _remember(tracked: BatchState, d: Decision, obs: BatchObservation, now: float) -> BatchState:
    if d.reason == Reason.NO_DATA:
        return tracked
    return replace(
        tracked,
        last_up_at=now if d.desired > d.current else tracked.last_up_at,
        last_down_at=now if d.desired < d.current else tracked.last_down_at,
        last_desired=d.desired,
        last_seen_replicas=obs.replicas,
    )


def _guards(names: Sequence[str]) -> str:
    return "guard " + ", ".join(names) + " not healthy"


def _fmt_eta(eta: float) -> str:
    return "never (not draining)" if math.isinf(eta) else f"{eta:.0f}s"
