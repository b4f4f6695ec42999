"""The rule for a batch with a deadline (`batchctl claim --finish-by`): pace it to finish by
then with the fewest replicas at once, the gentlest load on what the workers share.

Every tick the plan is made again (autoscaler/policy/pacing.py) from the work left (waiting,
in flight and running), the measured pace per ready replica (else worker_concurrency /
task_seconds from the config) and the time left: fewer replicas than there are still
finish in time -> one down per step interval (`deadline_pace`); more are needed -> up
towards them by `step_up` per step interval (`deadline`), stopped by the claim, the
guards, the cap, pods not ready and the step interval as any growth is. With nothing
waiting the shrink rules decide, as without a deadline, but for one: an idle batch
(nothing waiting, in flight or running on two ticks running) goes to min_replicas at
once (`deadline_idle`), since the holder's deadline, not idle_after_seconds, says how
long new work may wait for a replica. With the pace unknown (no measurement yet and no
task_seconds) the backlog rule decides. A deadline the caps cannot
meet holds at the cap, and says so: the exporter reports the batch behind
(CeleryBatchBehindDeadline).
"""

from __future__ import annotations

from autoscaler.policy.growth import growth_held
from autoscaler.policy.model import Decision
from autoscaler.policy.pacing import DEFAULT_STARTUP_SECONDS, Plan, Ramp, plan
from autoscaler.policy.shrink import one_down
from autoscaler.policy.tick import Tick
from batchctl.reasons import Reason
from batchctl.units import format_duration


def pace(c: Tick) -> float | None:
    """Tasks per second one ready replica completes: measured, else the configured
    task_seconds; None when neither is known."""
    measured = c.tracked.rate_per_replica
    if measured is not None and measured > 0:
        return measured
    if c.batch.task_seconds:
        return c.batch.worker_concurrency / c.batch.task_seconds
    return None


def deadline_plan(c: Tick) -> Plan | None:
    """The plan for the claim's deadline at this tick; None without a deadline or a pace."""
    claim = c.obs.claim
    if claim is None or claim.finish_by is None:
        return None
    rate = pace(c)
    if rate is None:
        return None
    b = c.batch
    ramp = Ramp(
        current=c.current,
        ready=c.obs.ready_replicas,
        step_up=b.step_up,
        step_interval=b.step_interval_seconds,
        startup=c.tracked.startup_seconds or DEFAULT_STARTUP_SECONDS,
    )
    return plan(c.obs.work, rate, claim.finish_by - c.now, c.cap, ramp)


def deadline(c: Tick) -> Decision | None:
    if c.obs.waiting == 0 or c.current == 0 or not c.claimed or c.draining:
        return None
    p = deadline_plan(c)
    if p is None:
        return None
    # What the deadline needs, unclamped: more than the cap means behind.
    need = c.cap + 1 if p.replicas is None else p.replicas
    want = max(1, c.batch.min_replicas, min(need, c.cap))
    left = format_duration(p.seconds_left) if p.seconds_left > 0 else "passed"
    if need > c.current:
        needs = f"{need} replicas" if p.replicas is not None else "more than any replicas can"
        detail = f"{p.work} left at {p.rate:.2f}/s per replica, deadline in {left}: needs {needs}"
        if held := growth_held(c, detail, f"{detail}; at cap {c.cap}: behind"):
            return held
        desired = min(want, c.current + c.batch.step_up, c.cap)
        return c.to(desired, Reason.DEADLINE, detail)
    done = format_duration(p.finish_seconds)
    if want < c.current:
        detail = f"{want} replicas finish {p.work} left in {done}, deadline in {left}"
        return one_down(c, Reason.DEADLINE_PACE, detail)
    return c.keep(Reason.STEADY, f"on pace: done in {done}, deadline in {left}")


def deadline_idle(c: Tick) -> Decision | None:
    claim = c.obs.claim
    if claim is None or claim.finish_by is None or not c.claimed or c.draining:
        return None
    b = c.batch
    # Scheduled (ETA) tasks keep their one replica (`scheduled`), deadline or not.
    if c.obs.work > 0 or c.obs.scheduled > 0 or c.current <= b.min_replicas or c.idle_for <= 0:
        return None
    detail = (
        f"idle for {c.idle_for:.0f}s with a deadline: new work waits for a new replica "
        "rather than replicas for new work"
    )
    return c.to(b.min_replicas, Reason.DEADLINE_PACE, detail)
