"""What the policy carries from tick to tick: timers, the override window, the throughput.

Throughput per ready replica, an EWMA over ticks while there was a queue to work on:

- with Celery's task events, from completions: tasks that succeeded or failed since the
  last tick (the exporter's counter) per second, divided by the ready replicas;
- without them, estimated from the fall of waiting + in flight between ticks. Messages
  carry no timestamps, so arrivals during the interval make it an underestimate, which
  errs towards scaling up; a queue that grows gives a negative estimate, i.e. "never
  drains" -> scale up.

The completion counter starts over when the exporter restarts: a counter lower than at
the last tick gives no sample, only a new starting point.
"""

from __future__ import annotations

import math
from dataclasses import replace

from autoscaler.policy.model import BatchObservation, BatchPolicy, BatchState, Decision
from batchctl.reasons import Reason

# Time constant of the throughput EWMA: about one default step interval, so that a step's
# effect is mostly visible before the next step is considered.
RATE_TAU_SECONDS = 60.0
# Weight of the newest pod start-up time in its running average.
STARTUP_ALPHA = 0.5
# How many of the last gaps between work the policy remembers (an odd number: a median).
GAP_SAMPLES = 5


def advance(obs: BatchObservation, bs: BatchState, b: BatchPolicy, now: float) -> BatchState:
    """`bs` brought up to `now`: timers, throughput and the manual-override window."""
    if not obs.data_ok or not obs.replicas_known:
        # No continuity across a gap: idle and slack timers and the rate start over.
        return replace(
            bs,
            idle_since=None,
            slack_since=None,
            quiet_since=None,
            prev_work=None,
            prev_completed=None,
            prev_at=None,
        )
    tracked = _track(obs, bs, now)
    # The count is not what we asked for: someone else changed it. (A change of ours that
    # did not land must be reported with `PolicyState.change_not_applied`, or it reads
    # the same.)
    # The holder's `batchctl scale` is not "someone else": its own override says how long.
    claimed = obs.claim.active_override(now) if obs.claim is not None else None
    holders = claimed is not None and obs.replicas == claimed.replicas
    if bs.last_desired is not None and obs.replicas != bs.last_desired and not holders:
        tracked = replace(tracked, override_until=now + b.manual_override_seconds)
    return tracked


def remember(tracked: BatchState, d: Decision, obs: BatchObservation, now: float) -> BatchState:
    """The state for the next tick, once the decision (after the budget) is final."""
    if d.reason in (Reason.NO_DATA, Reason.REPLICAS_UNKNOWN):
        return tracked  # the count is not known: nothing to remember of it
    waiting_for_idle = d.reason == Reason.BUSY_WORKERS
    return replace(
        tracked,
        last_up_at=now if d.desired > d.current else tracked.last_up_at,
        last_down_at=now if d.desired < d.current else tracked.last_down_at,
        last_desired=d.desired,
        last_seen_replicas=obs.replicas,
        busy_since=(tracked.busy_since or now) if waiting_for_idle else None,
        started_from_zero_at=(
            now if d.current == 0 and d.desired > 0 else tracked.started_from_zero_at
        ),
    )


def _track(obs: BatchObservation, bs: BatchState, now: float) -> BatchState:
    """Advance the idle and slack timers and the throughput estimate."""
    work = obs.work
    idle_since = (bs.idle_since if bs.idle_since is not None else now) if work == 0 else None
    slack_since = (
        (bs.slack_since if bs.slack_since is not None else now) if obs.waiting == 0 else None
    )
    behind = obs.ready_replicas < obs.replicas
    not_ready_since = (
        (bs.not_ready_since if bs.not_ready_since is not None else now) if behind else None
    )
    startup = bs.startup_seconds
    if not behind and bs.not_ready_since is not None and obs.replicas > 0:
        # The pods asked for are all ready now: that is how long starting took.
        took = now - bs.not_ready_since
        startup = took if startup is None else startup + STARTUP_ALPHA * (took - startup)
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
        sample: float | None = (bs.prev_work - work) / dt / obs.ready_replicas
        if obs.completed is not None and bs.prev_completed is not None:
            done = obs.completed - bs.prev_completed
            sample = done / dt / obs.ready_replicas if done >= 0 else None
        if sample is not None:
            alpha = 1.0 - math.exp(-dt / RATE_TAU_SECONDS)
            rate = sample if rate is None else rate + alpha * (sample - rate)
    quiet_since, gaps = _gaps(obs, bs, now)
    return replace(
        bs,
        idle_since=idle_since,
        slack_since=slack_since,
        quiet_since=quiet_since,
        gaps=gaps,
        prev_work=work,
        prev_waiting=obs.waiting,
        prev_completed=obs.completed,
        prev_at=now,
        rate_per_replica=rate,
        not_ready_since=not_ready_since,
        startup_seconds=startup,
    )


def _gaps(
    obs: BatchObservation, bs: BatchState, now: float
) -> tuple[float | None, tuple[float, ...]]:
    """The quiet period under way and the last GAP_SAMPLES gaps, advanced to `now`.

    A gap is measured from the first tick of a quiet period (nothing waiting, in flight
    or running) to the tick that sees work again, or to the first tick at which the
    events' completion counter has moved since the previous quiet tick: a task came and
    went between the two (without a replica it would have been waiting). Both ends are
    ticks, so a gap is known to within a tick interval; without events a task that runs
    between two ticks goes unseen (autoscaler/policy/gaps.py does not use them then).
    """
    if bs.quiet_since is None:
        return (now if obs.work == 0 else None), bs.gaps
    came_and_went = (
        obs.completed is not None
        and bs.prev_completed is not None
        and obs.completed > bs.prev_completed
    )
    if obs.work == 0 and not came_and_went:
        return bs.quiet_since, bs.gaps
    gaps = (*bs.gaps, now - bs.quiet_since)[-GAP_SAMPLES:]
    return (now if obs.work == 0 else None), gaps


def eta(work: int, rate_per_replica: float | None, replicas: int) -> float:
    """Seconds to drain `work` at the observed pace; inf when unknown or not draining."""
    if work <= 0:
        return 0.0
    if rate_per_replica is None or rate_per_replica <= 0 or replicas <= 0:
        return math.inf
    return work / (rate_per_replica * replicas)


def replicas_for_target(
    work: int, rate_per_replica: float | None, b: BatchPolicy, current: int
) -> int:
    """Replicas that would drain `work` within the target; one step more when unknown."""
    if rate_per_replica is None or rate_per_replica <= 0:
        return current + b.step_up
    need = work / (rate_per_replica * b.target_drain_seconds)
    # A vanishing rate gives a huge or infinite need; callers clamp to step and cap anyway.
    return max(current + 1, math.ceil(min(need, 1e6)))
