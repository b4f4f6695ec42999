"""One batch at one tick as the rules see it (`Tick`), and the sentences they share.

Each rule (autoscaler/policy/hands_off.py, growth.py, shrink.py) looks at a `Tick` and
returns a `Decision`, or None when it does not apply; `steps.PRECEDENCE` orders them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from autoscaler.policy.model import (
    BatchObservation,
    BatchPolicy,
    BatchState,
    Decision,
    GuardResult,
    GuardStatus,
    effective_cap,
    inflight_floor,
)
from autoscaler.policy.tracking import eta
from batchctl.claims import Override
from batchctl.reasons import Action, Reason


@dataclass(frozen=True, slots=True)
class Tick:
    """One batch at one tick: the observation, the state before and after tracking, the
    batch's config, and what the steps ask of them."""

    obs: BatchObservation
    before: BatchState  # as the previous tick left it
    tracked: BatchState  # timers, throughput and override window advanced to `now`
    batch: BatchPolicy
    now: float

    @property
    def current(self) -> int:
        return self.obs.replicas

    @property
    def cap(self) -> int:
        return effective_cap(self.batch)

    @property
    def floor(self) -> int:
        o = self.obs
        return inflight_floor(self.batch, o.held, o.active, o.scheduled)

    @property
    def floor_detail(self) -> str:
        """'12 in flight need 1', or with running tasks '12 in flight, 5 running need 2',
        with scheduled ones '12 in flight, 40 scheduled need 1'."""
        o = self.obs
        running = f", {o.active} running" if o.active else ""
        scheduled = f", {o.scheduled} scheduled" if o.scheduled else ""
        return f"{o.held} in flight{running}{scheduled} need {self.floor}"

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


def guards_text(guards: Sequence[GuardResult] | Sequence[str]) -> str:
    """'guard db not healthy' or, with results, each unhealthy one with what it said."""
    parts = []
    for g in guards:
        if isinstance(g, str):
            parts.append(g)
        elif g.status != GuardStatus.HEALTHY:
            parts.append(f"{g.name} {g.status}" + (f" ({g.detail})" if g.detail else ""))
    return "guard " + ", ".join(parts) + " not healthy"


def fmt_eta(seconds: float) -> str:
    return "never (not draining)" if math.isinf(seconds) else f"{seconds:.0f}s"
