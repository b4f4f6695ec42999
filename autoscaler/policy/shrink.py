"""The rules that take replicas away: above the cap, shed by a guard, drained, idle, or
a small tail of in-flight work; each step down paced by `step_interval_seconds` (the
drop to min_replicas of an idle or drained batch excepted) and never below the
in-flight floor."""

from __future__ import annotations

from autoscaler.policy.model import Decision
from autoscaler.policy.tick import Tick, fmt_eta, guards_text
from batchctl.reasons import Reason


def above_cap(c: Tick) -> Decision | None:
    if c.current <= c.cap:
        return None
    return one_down(c, Reason.ABOVE_CAP, f"above cap {c.cap}")


def one_down(c: Tick, reason: Reason, detail: str) -> Decision:
    """One replica down for `reason`, unless the in-flight floor needs it or the last
    change was less than a step interval ago (a hold under `reason`)."""
    if c.current - 1 < c.floor:
        return c.hold(Reason.INFLIGHT_FLOOR, f"{detail}; {c.floor_detail}")
    if not c.down_open:
        return c.hold(reason, f"{detail}; one down per step interval")
    return c.to(c.current - 1, reason, detail)


def guard_shed(c: Tick) -> Decision | None:
    # Shedding lightens the load down to one replica (or min_replicas); from there the
    # later rules decide, so the guard still holds growth (`guard_hold`) and an idle
    # batch still goes to min_replicas.
    if not c.shedding or c.current <= max(1, c.batch.min_replicas):
        return None
    if c.current - 1 < c.floor:
        detail = f"{guards_text(c.shedding)}; {c.floor_detail}"
        return c.hold(Reason.INFLIGHT_FLOOR, detail)
    if not c.down_open:
        return c.hold(Reason.GUARD_SHED, guards_text(c.shedding))
    return c.to(c.current - 1, Reason.GUARD_SHED, guards_text(c.shedding))


def drained(c: Tick) -> Decision | None:
    # Released with --drain and now idle on two ticks running (the first idle tick only
    # starts the timer): the holder is done, so no idle_after_seconds wait. Scheduled
    # tasks are work the holder asked for: the drain waits for them (`scheduled`).
    b = c.batch
    if not c.draining or c.obs.work > 0 or c.obs.scheduled > 0:
        return None
    if c.current <= b.min_replicas or c.idle_for <= 0:
        return None
    return c.to(b.min_replicas, Reason.DRAINED, f"drain done: idle for {c.idle_for:.0f}s")


def scheduled(c: Tick) -> Decision | None:
    # Only scheduled work (ETA and countdown tasks a worker holds until their time):
    # one replica keeps them all, whatever their number (they are outside its prefetch
    # limit). Not zero: a warm shutdown hands them back to the queue, where they wait,
    # and `from_zero` would start a replica at once. Above one, the pace is that of the
    # idle rules: one down per step interval, or straight to one after idle_after.
    o, b = c.obs, c.batch
    if o.scheduled == 0 or o.work > 0 or c.current == 0 or c.tracked.idle_since is None:
        return None
    keep = max(1, b.min_replicas)
    detail = f"only {o.scheduled} scheduled (ETA tasks): {keep} replica(s) hold them"
    if c.current <= keep:
        return c.keep(Reason.SCHEDULED, detail)
    if c.idle_for >= b.idle_after_seconds:
        return c.to(keep, Reason.SCHEDULED, f"{detail}; idle for {c.idle_for:.0f}s")
    return None


def idle_to_zero(c: Tick) -> Decision | None:
    b = c.batch
    if c.obs.waiting > 0 or c.current <= b.min_replicas or c.tracked.idle_since is None:
        return None
    if c.idle_for < b.idle_after_seconds:
        return None
    # The same with an expired claim: the claim stops growth, never brings shrinking forward.
    return c.to(b.min_replicas, Reason.IDLE_TO_ZERO, f"idle for {c.idle_for:.0f}s")


def idle_step_down(c: Tick) -> Decision | None:
    # Idle on two ticks running (the first idle tick only starts the timer): down to one,
    # which waits out idle_after for the drop to min_replicas. Nothing in flight, so no
    # floor; the pace is that of every step down.
    if c.obs.waiting > 0 or c.current <= max(1, c.batch.min_replicas) or c.idle_for <= 0:
        return None
    detail = f"idle for {c.idle_for:.0f}s"
    if not c.down_open:
        return c.hold(Reason.IDLE_STEP_DOWN, f"{detail}; one down per step interval")
    return c.to(c.current - 1, Reason.IDLE_STEP_DOWN, detail)


def step_down(c: Tick) -> Decision | None:
    b = c.batch
    # Only in-flight or running work left; with nothing at all the idle rules decide.
    if c.obs.waiting > 0 or c.obs.busy == 0 or c.current <= max(1, b.min_replicas):
        return None
    # The tail is small when what is left would be done within one step interval even
    # with one replica fewer; until then a removed replica only hands its prefetched
    # messages to busy neighbours and the tail gets longer (benchmarks/README.md,
    # "Scale-down pace": without this condition long-task tails drain 2-8% later).
    rest = c.eta(c.current - 1)
    if c.slack_for < b.step_interval_seconds or rest > b.step_interval_seconds:
        return None
    if c.current - 1 < c.floor:
        return c.hold(Reason.INFLIGHT_FLOOR, c.floor_detail)
    detail = f"nothing waiting for {c.slack_for:.0f}s, rest done in {fmt_eta(rest)}"
    if not c.down_open:
        return c.hold(Reason.STEP_DOWN, f"{detail}; one down per step interval")
    return c.to(c.current - 1, Reason.STEP_DOWN, detail)


def idle(c: Tick) -> Decision | None:
    b = c.batch
    if c.obs.waiting > 0 or c.current <= b.min_replicas or c.tracked.idle_since is None:
        return None
    left = b.idle_after_seconds - c.idle_for
    return c.keep(Reason.IDLE, f"idle; to {b.min_replicas} in {left:.0f}s")
