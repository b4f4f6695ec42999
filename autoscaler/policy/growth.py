"""The rules for work that waits: from zero to one replica, and steps up while the
backlog would take longer than `target_drain_seconds`, each stopped by a claim, a guard,
the cap, replicas that are not ready yet, or the step interval."""

from __future__ import annotations

from autoscaler.policy.model import Decision
from autoscaler.policy.tick import Tick, fmt_eta, guards_text
from autoscaler.policy.tracking import replicas_for_target
from batchctl.reasons import Reason


def _start_one(c: Tick, reason: Reason, what: str) -> Decision:
    """One replica for a batch at 0 with `what` to do, if it is claimed (or draining:
    that means "finish the work", and needs one), every guard is healthy and the cap is
    not 0; else a hold that says which."""
    if not c.may_grow and not c.draining:
        # Reported, not scaled: a batch nobody holds never starts on its own.
        return c.hold(c.no_claim, f"{what}, not scaled")
    if c.blocked:
        return c.hold(Reason.GUARD_HOLD, guards_text(c.obs.guards))
    if c.cap == 0:
        return c.hold(Reason.AT_CAP, "cap is 0")
    return c.to(1, reason, what)


def from_zero(c: Tick) -> Decision | None:
    if c.current != 0 or c.obs.waiting == 0:
        return None
    what = f"{c.obs.waiting} waiting"
    return _start_one(c, Reason.FROM_ZERO, f"{what}; draining: one replica" if c.draining else what)


def stranded(c: Tick) -> Decision | None:
    """Stranded in-flight work at 0 replicas: kombu restores a message from `unacked`
    (restore_visible, once it is older than the visibility timeout) only from a running
    worker, so with none they stay there for good. One replica brings them back to the
    queue (a worker restores at its start), from where the other rules take over."""
    n = c.obs.stranded
    if c.current != 0 or n == 0 or c.obs.waiting > 0:
        return None
    what = f"{n} in flight past the visibility timeout and no worker to restore them"
    return _start_one(c, Reason.STRANDED, what)


def backlog(c: Tick) -> Decision | None:
    if c.obs.waiting == 0 or c.current == 0:
        return None
    b = c.batch
    drain = c.eta(c.current)
    if drain <= b.target_drain_seconds:
        return c.keep(Reason.STEADY, f"drain in {fmt_eta(drain)}")
    detail = f"{c.obs.waiting} waiting, drain in {fmt_eta(drain)} > {b.target_drain_seconds:.0f}s"
    if c.draining:
        return c.hold(Reason.DRAINING, f"{detail}; released with --drain: no growth")
    if not c.may_grow:
        return c.hold(c.no_claim, detail)
    if held := growth_held(c, detail, f"{detail}; at cap {c.cap}"):
        return held
    want = replicas_for_target(c.obs.work, c.tracked.rate_per_replica, b, c.current)
    desired = min(want, c.current + b.step_up, c.cap)
    if desired == c.cap and want > c.cap:
        detail = f"{detail}; reaching cap {c.cap}"
    return c.to(desired, Reason.BACKLOG, detail)


def growth_held(c: Tick, detail: str, at_cap: str) -> Decision | None:
    """Why a step up cannot be taken now, or None: a guard that is not healthy, the cap
    (`at_cap` is that hold's detail), pods not ready, or the step interval."""
    if c.blocked:
        return c.hold(Reason.GUARD_HOLD, guards_text(c.obs.guards))
    if c.current >= c.cap:
        return c.hold(Reason.AT_CAP, at_cap)
    if not_ready := replicas_behind(c):
        return not_ready
    if not c.up_open:
        return c.hold(Reason.STEP_LIMIT, detail)
    return None


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
