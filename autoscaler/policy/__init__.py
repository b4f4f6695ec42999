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
3. `above_cap`: above the batch's cap (config lowered, override ended) -> one down per tick.
4. Waiting work at 0 replicas -> `from_zero` (1 replica) on the first tick that sees it,
   if the batch is claimed, every guard is healthy and the budget has room.
5. A guard that is unhealthy with `shed: true` -> `guard_shed`, one replica down per step
   interval while above 1 (and min_replicas), never below the in-flight floor; from 1 on
   the later rules decide (growth is still held, an idle batch still goes to zero).
   Unknown results hold but never shed: shedding is a scaling action too, and a
   Prometheus outage must not drain every batch.
6. Backlog: while the work would take longer than `target_drain_seconds` at the observed
   per-replica throughput -> up by at most `step_up` per `step_interval_seconds`
   (`backlog`), unless a guard is not healthy (`guard_hold`), the batch is not claimed
   (`unclaimed`, `claim_expired`), the cap (`at_cap`) or the shared budget (`budget`) is
   reached, or the last step is too recent (`step_limit`).
7. Nothing waiting: to `min_replicas` once waiting + in flight has been 0 continuously for
   `idle_after_seconds` (`idle_to_zero`, whether or not the claim has expired);
   otherwise, idle on two ticks running, one replica down per tick to 1; or, with only
   in-flight work left, one replica down per step interval once nothing has waited for a
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

from collections.abc import Iterable, Sequence

from autoscaler.policy.budget import apply_budget
from autoscaler.policy.model import (
    BatchObservation,
    BatchState,
    Decision,
    GuardResult,
    GuardStatus,
    PolicyState,
    effective_cap,
    inflight_floor,
    replica_capacity,
)
from autoscaler.policy.steps import PRECEDENCE, Step, decide_batch
from autoscaler.policy.tracking import remember
from batchctl.config import Config
from batchctl.reasons import Action, Reason

__all__ = [
    "PRECEDENCE",
    "Action",
    "BatchObservation",
    "BatchState",
    "Decision",
    "GuardResult",
    "GuardStatus",
    "PolicyState",
    "Reason",
    "Step",
    "decide",
    "effective_cap",
    "inflight_floor",
    "replica_capacity",
]


def decide(
    observations: Iterable[BatchObservation],
    state: PolicyState,
    config: Config,
    now: float,
    *,
    precedence: Sequence[Step] = PRECEDENCE,
) -> tuple[list[Decision], PolicyState]:
    """One tick: a decision per configured batch observed, and the state for the next tick.

    `now` is the caller's clock in seconds (the loop's wall clock, the simulator's second).
    Observations of queues that are not configured batches are ignored; configured
    batches without an observation keep their state and get no decision. `precedence`
    replaces the rules (`PRECEDENCE`, in order); only the simulator's comparison of
    candidate rules (benchmarks/scale_down_pace.py) passes another.
    """
    proposals: list[tuple[Decision, BatchState, BatchObservation]] = []
    for obs in observations:
        batch = config.batch(obs.queue)
        if batch is None:
            continue
        decision, tracked = decide_batch(obs, state.batch(obs.queue), batch, now, precedence)
        proposals.append((decision, tracked, obs))

    decisions = apply_budget([p[0] for p in proposals], config.autoscaler.global_max_replicas)

    batches = dict(state.batches)
    for decision, (_, tracked, obs) in zip(decisions, proposals, strict=True):
        batches[decision.queue] = remember(tracked, decision, obs, now)
    return decisions, PolicyState(batches)
