"""Scaling by the gaps between work: when to let an idle batch go, and when to start it again.

A batch whose work comes in small bursts with quiet gaps (a night of a few tasks a
minute) costs one replica waiting out `idle_after_seconds` between bursts, nearly all of
it idle. Two rules trade that waiting for what a pod start costs:

- `idle_gap`: with Celery's events, the policy measures the gaps between work
  (autoscaler/policy/tracking.py: from the first quiet tick to the tick that sees work
  again, or sees that a task came and went). When the median of the last GAP_SAMPLES
  gaps is longer than the batch's pods take to start (measured, else
  DEFAULT_STARTUP_SECONDS), keeping an idle replica for the next work costs more
  replica-seconds than starting one when it comes: an idle batch goes to min_replicas
  on its first idle tick instead of after `idle_after_seconds`. Gaps shorter than a
  start keep the replica, as before, for at most idle_after_seconds. Without events
  the rule stays out: a task that runs between two ticks (and a running one, with
  early acknowledgement) is invisible, so the gaps would be too long and the batch
  might look idle while a worker is busy. `adaptive_idle: false` turns it off.
- `from_zero_interval`: at 0 replicas, small work (one replica would drain it within
  target_drain_seconds at the measured pace) waits until `from_zero_interval_seconds`
  after the batch's last start from zero, so that one start serves the bursts of that
  interval instead of one start a burst: at most one start from zero per interval,
  and no message waiting longer than the interval for a ready replica (its age plus
  the measured start). The first work after a longer quiet spell starts a replica at
  once, and so does work that would take longer than the target, work of a draining
  claim (the holder wants it finished) and work of a claim with a deadline (its pacing
  decides). An unknown pace starts at once. A new leader knows no last start (nor any
  gap): its first small work starts a replica at once.
"""

from __future__ import annotations

from statistics import median_low

from autoscaler.policy.model import Decision
from autoscaler.policy.pacing import DEFAULT_STARTUP_SECONDS
from autoscaler.policy.tick import Tick, fmt_eta
from batchctl.reasons import Reason
from batchctl.units import format_duration


def start_cost(c: Tick) -> float:
    """Seconds a new pod takes to work: measured, else DEFAULT_STARTUP_SECONDS."""
    return c.tracked.startup_seconds or DEFAULT_STARTUP_SECONDS


def typical_gap(c: Tick) -> float | None:
    """The median (the lower one of an even count) of the last measured gaps between
    work, in seconds; None before the first."""
    gaps = c.tracked.gaps
    return median_low(gaps) if gaps else None


def idle_gap(c: Tick) -> Decision | None:
    b = c.batch
    if not b.adaptive_idle or c.obs.work > 0 or c.current <= b.min_replicas:
        return None
    if c.obs.scheduled > 0:
        return None  # one replica keeps them (`scheduled`), however long the gaps
    if c.tracked.idle_since is None or c.obs.completed is None or c.obs.idle_replicas is None:
        return None  # not idle, or no events: idle_after_seconds decides
    gap, start = typical_gap(c), start_cost(c)
    if gap is None or gap <= start:
        return None
    detail = (
        f"idle; the last gaps between work (median {gap:.0f}s of {len(c.tracked.gaps)}) are "
        f"longer than a pod start ({start:.0f}s): to {b.min_replicas} now rather than after "
        f"idle_after {b.idle_after_seconds:.0f}s"
    )
    return c.to(b.min_replicas, Reason.IDLE_GAP, detail)


def from_zero_interval(c: Tick) -> Decision | None:
    b = c.batch
    if c.current != 0 or c.obs.waiting == 0 or c.draining or not c.may_grow:
        return None  # from_zero decides (or says why the batch does not start)
    if c.blocked or c.cap == 0:
        return None
    claim = c.obs.claim
    if claim is not None and claim.finish_by is not None:
        return None
    interval = b.from_zero_interval_seconds
    last = c.tracked.started_from_zero_at
    if last is None or c.now - last >= interval:
        return None
    # No message waits longer than the interval for a ready replica (as far as the
    # measured start goes), whenever it came.
    start = start_cost(c)
    if c.obs.oldest_age_seconds + start >= interval:
        return None
    drain = c.eta(1)
    if drain > b.target_drain_seconds:
        return None  # too much to wait, or the pace is unknown: from_zero starts one
    detail = (
        f"{c.obs.waiting} waiting (oldest {c.obs.oldest_age_seconds:.0f}s), one replica drains "
        f"them in {fmt_eta(drain)}; last start from zero {format_duration(c.now - last)} ago, "
        f"at most one per {format_duration(interval)} (from_zero_interval)"
    )
    return c.hold(Reason.FROM_ZERO_INTERVAL, detail)
