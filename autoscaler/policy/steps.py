"""The precedence steps: one small function per rule, tried in order until one decides.

Each step looks at a `Tick` (one batch at one tick) and returns a `Decision`, or None when
its rule does not apply. `PRECEDENCE` is the order of the module docstring of
`autoscaler.policy`; its last step always decides.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from autoscaler.policy.model import (
    BatchObservation,
    BatchState,
    Decision,
    GuardResult,
    GuardStatus,
    effective_cap,
    inflight_floor,
)
from autoscaler.policy.tracking import advance, eta, replicas_for_target
from batchctl.claims import Override
from batchctl.config import BatchConfig
from batchctl.reasons import Action, Reason
from batchctl.units import format_duration


@dataclass(frozen=True, slots=True)
class Tick:
    """One batch at one tick: the observation, the state before and after tracking, the
    batch's config, and what the steps ask of them."""

    obs: BatchObservation
    before: BatchState  # as the previous tick left it
    tracked: BatchState  # timers, throughput and override window advanced to `now`
    batch: BatchConfig
    now: float

    @property
    def current(self) -> int:
        return self.obs.replicas

    @property
    def cap(self) -> int:
        return effective_cap(self.batch)

    @property
    def floor(self) -> int:
        return inflight_floor(self.batch, self.obs.in_flight, self.obs.active)

    @property
    def floor_detail(self) -> str:
        """'12 in flight need 1', or with running tasks '12 in flight, 5 running need 2'."""
        running = f", {self.obs.active} running" if self.obs.active else ""
        return f"{self.obs.in_flight} in flight{running} need {self.floor}"

    @property
    def claimed(self) -> bool:
        return self.obs.claim is not None and not self.obs.claim.expired(self.now)

    @property
    def may_grow(self) -> bool:
        return (self.claimed or not self.batch.require_claim) and not self.draining

    @property
    def draining(self) -> bool:
        """The holder released the batch with --drain: finish, then go to min_replicas."""
        return self.obs.claim is not None and self.obs.claim.draining

    @property
    def override(self) -> Override | None:
        """The holder's `batchctl scale` in force now (never past the claim's expiry)."""
        return self.obs.claim.active_override(self.now) if self.obs.claim is not None else None

    @property
    def no_claim(self) -> Reason:
        """Why an unclaimed batch does not grow: never claimed, or the claim ran out."""
        return Reason.CLAIM_EXPIRED if self.obs.claim is not None else Reason.UNCLAIMED

    @property
    def blocked(self) -> list[str]:
        """Guards that are not healthy (unknown included): no growth while any is."""
        return [g.name for g in self.obs.guards if g.status != GuardStatus.HEALTHY]

    @property
    def shedding(self) -> list[str]:
        """Unhealthy guards with `shed: true` (an unknown result never sheds)."""
        return [g.name for g in self.obs.guards if g.status == GuardStatus.UNHEALTHY and g.shed]

    @property
    def up_open(self) -> bool:
        """A step up is allowed: the last one was at least a step interval ago."""
        last = self.before.last_up_at
        return last is None or self.now - last >= self.batch.step_interval_seconds

    @property
    def down_open(self) -> bool:
        """A step down is allowed: the policy's last change of this batch, up or down, was
        at least a step interval ago (the drop to min_replicas after idle_after is not
        paced)."""
        last = self.before.last_change_at
        return last is None or self.now - last >= self.batch.step_interval_seconds

    @property
    def idle_for(self) -> float:
        """Seconds waiting + in flight + running has been 0 (0.0 on the first idle tick)."""
        since = self.tracked.idle_since
        return self.now - since if since is not None else 0.0

    @property
    def slack_for(self) -> float:
        """Seconds nothing has been waiting (0.0 on the first such tick, or while some wait)."""
        since = self.tracked.slack_since
        return self.now - since if since is not None else 0.0

    def eta(self, replicas: int) -> float:
        """Seconds to finish waiting + in flight + running with `replicas` at the observed
        throughput."""
        return eta(self.obs.work, self.tracked.rate_per_replica, replicas)

    def to(self, desired: int, reason: Reason, detail: str) -> Decision:
        """Set `desired`: up, down, or none when it is the current count."""
        c = self.current
        action = Action.UP if desired > c else Action.DOWN if desired < c else Action.NONE
        return Decision(self.obs.queue, desired, c, reason, action, detail)

    def hold(self, reason: Reason, detail: str) -> Decision:
        """Keep the count although a rule called for a change: `reason` stopped it."""
        return Decision(self.obs.queue, self.current, self.current, reason, Action.HOLD, detail)

    def keep(self, reason: Reason, detail: str = "") -> Decision:
        """Keep the count: nothing calls for a change."""
        return Decision(self.obs.queue, self.current, self.current, reason, Action.NONE, detail)


Step = Callable[[Tick], Decision | None]


def no_data(c: Tick) -> Decision | None:
    if c.obs.data_ok:
        return None
    return c.keep(Reason.NO_DATA, c.obs.why or "broker unreachable or snapshot stale")


def replicas_unknown(c: Tick) -> Decision | None:
    if c.obs.replicas_known:
        return None
    return c.keep(Reason.REPLICAS_UNKNOWN, c.obs.why or "the Deployment's replicas are unknown")


def manual_override(c: Tick) -> Decision | None:
    until = c.tracked.override_until
    if until is not None and c.now < until:
        detail = f"replicas set to {c.current} by someone else; hands off for {until - c.now:.0f}s"
        return c.keep(Reason.MANUAL_OVERRIDE, detail)
    o = c.override
    if o is None:
        return None
    # The holder's `batchctl scale`: that many replicas until it ends. The Kubernetes
    # backend's CLI has usually set them already; the local backend's workers are the
    # autoscaler's, so it applies them. Within the caps as they are now.
    target = max(c.batch.min_replicas, min(o.replicas, c.cap))
    left = format_duration(o.until - c.now)
    detail = f"{o.replicas} replicas set by {o.by} (batchctl scale) for {left} more"
    if o.reason:
        detail += f": {o.reason}"
    if target != o.replicas:
        detail += f"; within the caps now: {target}"
    return c.to(target, Reason.MANUAL_OVERRIDE, detail)


def above_cap(c: Tick) -> Decision | None:
    if c.current <= c.cap:
        return None
    detail = f"above cap {c.cap}"
    if c.current - 1 < c.floor:
        return c.hold(Reason.INFLIGHT_FLOOR, f"{detail}; {c.floor_detail}")
    if not c.down_open:
        return c.hold(Reason.ABOVE_CAP, f"{detail}; one down per step interval")
    return c.to(c.current - 1, Reason.ABOVE_CAP, detail)


def from_zero(c: Tick) -> Decision | None:
    if c.current != 0 or c.obs.waiting == 0:
        return None
    if c.draining:
        # Draining means "finish the work": at 0 replicas that needs one (within the cap,
        # when the guards allow), never more.
        if c.blocked:
            return c.hold(Reason.GUARD_HOLD, _guards(c.obs.guards))
        if c.cap == 0:
            return c.hold(Reason.AT_CAP, "cap is 0")
        return c.to(1, Reason.FROM_ZERO, f"{c.obs.waiting} waiting; draining: one replica")
    if not c.may_grow:
        # Reported, not scaled: a batch nobody holds never starts on its own.
        return c.hold(c.no_claim, f"{c.obs.waiting} waiting, not scaled")
    if c.blocked:
        return c.hold(Reason.GUARD_HOLD, _guards(c.obs.guards))
    if c.cap == 0:
        return c.hold(Reason.AT_CAP, "cap is 0")
    return c.to(1, Reason.FROM_ZERO, f"{c.obs.waiting} waiting")


def guard_shed(c: Tick) -> Decision | None:
    # Shedding lightens the load down to one replica (or min_replicas); from there the
    # later rules decide, so the guard still holds growth (`guard_hold`) and an idle
    # batch still goes to min_replicas.
    if not c.shedding or c.current <= max(1, c.batch.min_replicas):
        return None
    if c.current - 1 < c.floor:
        detail = f"{_guards(c.shedding)}; {c.floor_detail}"
        return c.hold(Reason.INFLIGHT_FLOOR, detail)
    if not c.down_open:
        return c.hold(Reason.GUARD_SHED, _guards(c.shedding))
    return c.to(c.current - 1, Reason.GUARD_SHED, _guards(c.shedding))


def backlog(c: Tick) -> Decision | None:
    if c.obs.waiting == 0 or c.current == 0:
        return None
    b = c.batch
    drain = c.eta(c.current)
    if drain <= b.target_drain_seconds:
        return c.keep(Reason.STEADY, f"drain in {_fmt_eta(drain)}")
    detail = f"{c.obs.waiting} waiting, drain in {_fmt_eta(drain)} > {b.target_drain_seconds:.0f}s"
    if c.draining:
        return c.hold(Reason.DRAINING, f"{detail}; released with --drain: no growth")
    if not c.may_grow:
        return c.hold(c.no_claim, detail)
    if c.blocked:
        return c.hold(Reason.GUARD_HOLD, _guards(c.obs.guards))
    if c.current >= c.cap:
        return c.hold(Reason.AT_CAP, f"{detail}; at cap {c.cap}")
    if not_ready := replicas_behind(c):
        return not_ready
    if not c.up_open:
        return c.hold(Reason.STEP_LIMIT, detail)
    want = replicas_for_target(c.obs.work, c.tracked.rate_per_replica, b, c.current)
    desired = min(want, c.current + b.step_up, c.cap)
    if desired == c.cap and want > c.cap:
        detail = f"{detail}; reaching cap {c.cap}"
    return c.to(desired, Reason.BACKLOG, detail)


def replicas_behind(c: Tick) -> Decision | None:
    """Step up only once the ready replicas caught up with the last step: pods that do not
    come up (no room in the cluster, crash-looping) are not multiplied. Within
    startup_grace_seconds they are starting; past it they are not ready, and we say how
    many are missing (CeleryWorkersNotReady alerts on the same condition)."""
    ready, asked = c.obs.ready_replicas, c.current
    if ready >= asked:
        return None
    since = c.tracked.not_ready_since
    waited = c.now - since if since is not None else 0.0
    if waited < c.batch.startup_grace_seconds:
        return c.hold(Reason.REPLICAS_STARTING, f"{ready} of {asked} ready; waiting for the rest")
    return c.hold(
        Reason.REPLICAS_NOT_READY,
        f"{asked - ready} of {asked} replicas not ready for {waited:.0f}s",
    )


def drained(c: Tick) -> Decision | None:
    # Released with --drain and now idle on two ticks running (the first idle tick only
    # starts the timer): the holder is done, so no idle_after_seconds wait.
    b = c.batch
    if not c.draining or c.obs.work > 0 or c.current <= b.min_replicas or c.idle_for <= 0:
        return None
    return c.to(b.min_replicas, Reason.DRAINED, f"drain done: idle for {c.idle_for:.0f}s")


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
    detail = f"nothing waiting for {c.slack_for:.0f}s, rest done in {_fmt_eta(rest)}"
    if not c.down_open:
        return c.hold(Reason.STEP_DOWN, f"{detail}; one down per step interval")
    return c.to(c.current - 1, Reason.STEP_DOWN, detail)


def idle(c: Tick) -> Decision | None:
    b = c.batch
    if c.obs.waiting > 0 or c.current <= b.min_replicas or c.tracked.idle_since is None:
        return None
    left = b.idle_after_seconds - c.idle_for
    return c.keep(Reason.IDLE, f"idle; to {b.min_replicas} in {left:.0f}s")


def steady(c: Tick) -> Decision:
    return c.keep(Reason.STEADY)


PRECEDENCE: tuple[Step, ...] = (
    no_data,
    replicas_unknown,
    manual_override,
    above_cap,
    from_zero,
    guard_shed,
    backlog,
    drained,
    idle_to_zero,
    idle_step_down,
    step_down,
    idle,
    steady,
)


def decide_batch(
    obs: BatchObservation,
    before: BatchState,
    batch: BatchConfig,
    now: float,
    precedence: Sequence[Step] = PRECEDENCE,
) -> tuple[Decision, BatchState]:
    """The batch's own decision before the shared budget, and its advanced state."""
    c = Tick(obs, before, advance(obs, before, batch, now), batch, now)
    for step in precedence:
        d = step(c)
        if d is not None:
            return d, c.tracked
    raise AssertionError("the last step of the precedence always decides")


def _guards(guards: Sequence[GuardResult] | Sequence[str]) -> str:
    """'guard db not healthy' or, with results, each unhealthy one with what it said."""
    parts = []
    for g in guards:
        if isinstance(g, str):
            parts.append(g)
        elif g.status != GuardStatus.HEALTHY:
            parts.append(f"{g.name} {g.status}" + (f" ({g.detail})" if g.detail else ""))
    return "guard " + ", ".join(parts) + " not healthy"


def _fmt_eta(seconds: float) -> str:
    return "never (not draining)" if math.isinf(seconds) else f"{seconds:.0f}s"
