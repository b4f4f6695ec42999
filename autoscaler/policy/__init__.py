"""The scaling policy: a pure function from what we observe to how many replicas each batch gets.

`decide(observations, state, config, now) -> (decisions, new_state)` does no I/O and never
reads a clock: the live loop, the simulator and the tests all call it unchanged. `config`
is the policy's own `PolicyConfig` (what it reads of each batch's config, and the shared
budget), which they build with autoscaler.policyconfig.policy_config. It follows
the operations page ("scale up slowly while watching the DB, Redis and Elasticsearch, never
past about 20, back to zero when done") with the safety habits of the Kubernetes HPA's
replica calculator: rate limits, clamps, a reason for every decision, and "when data is
missing, do whatever argues against scaling".

Per batch and per tick, the rules in order of precedence (`PRECEDENCE` in `steps.py`, one
function each in `hands_off.py`, `growth.py`, `shrink.py`, `deadline.py`, `scalein.py`
and `gaps.py`); the first that applies decides. Each decision carries one reason
(batchctl/reasons.py says what each means) and an action: up or down when the count
changes, hold when a rule called for a change that a limit stopped, none otherwise.

1. `no_data`: broker unreachable or snapshot stale -> change nothing.
2. `manual_override`: the replica count is not what we last asked for, so someone else
   changed it -> leave it alone for `manual_override_seconds`. (The loop reports a patch
   that failed with `PolicyState.change_not_applied`, or it reads the same.) Or the
   claim's holder set the replicas with `batchctl scale` (an override record in the
   claim, carried by the snapshot) -> that many replicas, within the caps, until the
   override ends (never past the claim's expiry); the detail says by whom and how long.
2a. `scheduled`: the only work left is scheduled (ETA and countdown tasks a worker holds
   until their time, `celery_queue_scheduled`) -> one replica (or min_replicas) after
   `idle_after_seconds`, stepping down meanwhile as an idle batch does; kept there while
   they wait, and none of the drops below applies. Not zero: a warm shutdown hands them
   back to the queue, where they would count as waiting and `from_zero` would start a
   replica at once. A draining batch waits for them too.
3. The drops of an idle batch (nothing waiting, in flight or running) straight to
   `min_replicas`, before any paced step down (so that a lower cap or a shedding guard
   never means more replicas than without them):
   - `deadline_idle`: the claim has a deadline and the batch is idle on two ticks
     running (new work waits for a new replica);
   - `drained`: the claim is draining and the batch is idle on two ticks running (no
     `idle_after_seconds` wait: the holder is done); the loop then ends the claim;
   - `idle_to_zero`: idle for `idle_after_seconds` (an expired claim changes nothing
     here);
   - `idle_gap`: with events (`adaptive_idle`), idle, and the median of the last gaps
     between work is longer than the batch's pods take to start (autoscaler/policy/
     gaps.py).
4. `above_cap`: above the batch's cap (config lowered, override ended) -> one down.
5a. `from_zero_interval`: small work waiting at 0 replicas (one replica drains it within
   `target_drain_seconds`) less than `from_zero_interval_seconds` after the batch's last
   start from zero, the oldest message younger than the interval less a start -> hold:
   one start serves the bursts of the interval (autoscaler/policy/gaps.py). Not for a
   draining claim, a claim with a deadline or an unknown pace; the holds of `from_zero`
   (claim, guards, cap 0) come first.
5. `from_zero`: work waiting at 0 replicas -> 1 replica on the first tick that sees it, if
   the batch is claimed (else `unclaimed`, `claim_expired`), every guard is healthy (else
   `guard_hold`) and the cap is not 0 (else `at_cap`). A draining claim (released with
   `--drain`) still gets its one replica: draining means "finish the work".
5b. `stranded`: nothing waits, the batch is at 0 replicas and messages in `unacked` are
   older than the visibility timeout with no live worker (`celery_queue_unacked_stranded`):
   kombu restores them only from a running worker, so one replica, claimed or draining,
   guards and cap permitting (the same holds as `from_zero`); it restores them at its
   start and the rules below take over.
6. `guard_shed`: a guard with `shed: true` is unhealthy -> one down, while above 1 and
   min_replicas; from there on the later rules decide (growth is still held by
   `guard_hold`; an idle batch still goes to zero). Unknown results hold but never shed:
   shedding is a scaling action too, and a Prometheus outage must not drain every batch.
7a. `deadline`: the claim has a deadline (`batchctl claim --finish-by`) and work waits ->
   the fewest replicas that finish by then (autoscaler/policy/pacing.py plans it from
   the work left, the pace and the time left, with a tenth to spare): up towards them
   (`deadline`, stopped as any growth is), or one down per step interval when fewer
   suffice (`deadline_pace`); at the cap it holds and says it is behind. Without a pace
   (none measured, no task_seconds) the backlog rule decides.
7. `backlog`: work waiting that would take longer than `target_drain_seconds` at the
   observed per-replica throughput -> up by at most `step_up` (never past what the
   target needs), unless the claim is draining (`draining`: no growth, finish with the
   replicas there are), the batch is not claimed (`unclaimed`, `claim_expired`), a guard
   is not healthy (`guard_hold`), it is at its cap (`at_cap`), or the last step up is
   too recent (`step_limit`); afterwards the shared budget may cut it (`budget`). Work
   that drains within the target: `steady`.
8. Nothing waiting, and no drop of 3.:
   - `idle_step_down`: idle on two ticks running -> one down, to 1 (or min_replicas);
   - `idle_replicas`: nothing has waited for a step interval, the busy map shows
     replicas with nothing to do while others finish -> those go, together;
   - `step_down`: only in-flight or running work left, nothing has waited for a whole
     step interval, and the rest would be done within a step interval with one replica
     fewer -> one down;
   - `idle`: idle at 1 (or on its first tick), waiting out `idle_after_seconds`.
9. `steady`: nothing calls for a change.

No step down ever goes below the in-flight floor (`inflight_floor`, a hold). With the
busy map (Celery's events matched to the replicas: `BatchObservation.idle_replicas`),
every step down but the holder's `batchctl scale` stops idle replicas only, and waits
(`busy_workers`) while every replica is busy, at most `busy_wait_seconds`
(autoscaler/policy/scalein.py); without it, it says that Kubernetes picks the pods.

**Pace.** Up: at most `step_up` replicas per `step_interval_seconds`, counted from the
last step up; from 0 to 1 (`from_zero`) at once (for small work, at most once per
`from_zero_interval_seconds`). Down: one replica per step, and a step
down (`above_cap`, `guard_shed`, `idle_step_down`, `step_down`) comes at least
`step_interval_seconds` after the policy's previous change of the batch, up or down;
until then the rule holds under its own reason. The exceptions are `idle_to_zero`, the
drop to `min_replicas` after `idle_after_seconds` of idleness, `drained`, the same
drop for a batch its holder released with `--drain`, `deadline_idle`, the same for an
idle batch with a deadline, `idle_gap`, the same when the gaps between work are longer
than a pod's start, and `idle_replicas`, the idle replicas of a tail (they hold
nothing and nothing has waited for an interval), which are not paced. The
idle step-down used to go one replica per tick; per step interval costs 0.9% more
replica-seconds over the simulator suite (0.2% with the defaults), with the same drain
time, mean wait and no interruptions, and keeps one rule for every step down
(benchmarks/README.md, "Scale-down pace", has the table and the tail rule's numbers).

**No tolerance band, no stabilization window.** The HPA needs both because its
recommendation is proportional (ceil(metric / target)) and may move many replicas in
either direction on every 15 s sync: a 10% tolerance keeps a metric that hovers at the
target from flapping, and the 300 s downscale window (the highest recommendation of the
last 5 minutes) keeps a dip from undoing a scale-up (docs/design.md). Here the rules for
going up (something waits and would take longer than the target) and down (nothing
waits) are disjoint, with `steady` between them as the dead band, and every step is one
replica (or `step_up`) per step interval. Measured in the simulator all the same: a 0.1
tolerance on the drain target changed replica-seconds by -0.2% with the suite config
(mean wait +0.6 s) and not at all with the defaults; a 300 s window (no step down until
nothing has waited for 300 s) cost 28% more replica-seconds with the suite config (the
ratio to KEDA+HPA goes from 0.62 to 0.79, past the 0.7 target) and 14% with the
defaults, for a mean wait 4.5 s (1.9 s) shorter. Neither is worth its cost.

Afterwards the shared budget (`global_max_replicas`): decisions that do not grow use it
first, then the room left goes to growing batches one replica at a time, fewest replicas
first (max-min fairness; ties by queue name); a batch that gets less says `budget`. The
budget only limits growth, it never forces a batch down.

Running tasks. With Celery's default early acknowledgement a running task has left
`unacked`, so without events "idle" means nothing waiting and nothing prefetched: a busy
but unsaturated batch can look idle and go to zero, and its running tasks finish only
thanks to the grace period. With Celery's task events (`events.enabled`, workers with
`-E`) the exporter counts the tasks executing now (`active`, reconciled with the
workers' heartbeats): idle then also needs active = 0, so `idle_to_zero` waits for the
running tasks, and the floor below counts them. Workers with `task_acks_late=True` make
running tasks visible in `unacked` too (benchmarks/README.md compares all four cases).

The in-flight floor: one replica holds at most `worker_concurrency * prefetch_multiplier`
messages in the broker's `unacked` hash (Celery's prefetch window) and runs at most
`worker_concurrency` tasks, so the fewest replicas that can hold the observed work is
max(ceil(held / window), ceil(active / concurrency)), and 1 while anything is scheduled.
`held` is in flight less the scheduled and stranded messages: a worker keeps ETA tasks
outside its prefetch limit (Celery raises its QoS for each; one replica can keep them
all), and no replica holds a stranded message. We never shrink below the floor.
Scheduled messages are not `work` either: they neither keep a batch from being idle
nor enter the drain ETA that `step_down` waits for.
Shrinking is still safe only because a removed worker's warm shutdown returns its
prefetched messages and finishes its running ones within the pod's grace period, which the
manifests derive from `max_task_seconds`.

The throughput behind "would take longer than the target" is an EWMA per ready replica:
of the tasks completed (succeeded + failed) by the events when they are on, else of the
observed fall of waiting + in flight (`tracking.py` says how and why it errs towards
scaling up). The modules: `model.py` the dataclasses, `tick.py` what the rules look at,
`hands_off.py`, `growth.py` and `shrink.py` the rules, `steps.py` their order,
`tracking.py` what is carried between ticks, `budget.py` the shared budget,
`deadline.py` and `pacing.py` deadlines, `scalein.py` the busy map, `gaps.py` the gaps
between work.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from autoscaler.policy.budget import apply_budget
from autoscaler.policy.model import (
    BatchObservation,
    BatchPolicy,
    BatchState,
    Decision,
    GuardResult,
    GuardStatus,
    PolicyConfig,
    PolicyState,
    effective_cap,
    inflight_floor,
    replica_capacity,
)
from autoscaler.policy.steps import PRECEDENCE, Step, decide_batch
from autoscaler.policy.tracking import remember
from batchctl.reasons import Action, Reason

__all__ = [
    "PRECEDENCE",
    "Action",
    "BatchObservation",
    "BatchPolicy",
    "BatchState",
    "Decision",
    "GuardResult",
    "GuardStatus",
    "PolicyConfig",
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
    config: PolicyConfig,
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

    decisions = apply_budget([p[0] for p in proposals], config.global_max_replicas)

    batches = dict(state.batches)
    for decision, (_, tracked, obs) in zip(decisions, proposals, strict=True):
        batches[decision.queue] = remember(tracked, decision, obs, now)
    return decisions, PolicyState(batches)
