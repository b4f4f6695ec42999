"""Scaling in with the busy map: which replicas a step down may stop.

With Celery's events the exporter knows the tasks each worker runs and holds, and the
backend matches workers to replicas; the observation carries how many replicas hold no
work (`BatchObservation.idle_replicas`). Two things follow:

- `spare_busy`, applied to every step down the rules decide (the holder's `batchctl
  scale` excepted: that count is theirs): a step down stops idle replicas only. With
  fewer idle replicas than the step removes, it removes those; with none it waits
  (`busy_workers`, a hold) until one is idle, at most `busy_wait_seconds`, then steps
  down all the same (the warm shutdown and the grace period, from max_task_seconds,
  let the tasks finish). A batch whose max_task_seconds is longer than
  busy_wait_seconds does not wait: its tasks outlast any wait. The backend then ranks
  the pods so that the idle ones go (pod-deletion-cost; the local backend stops those
  processes).
- `idle_replicas`, a rule: nothing has waited for a step interval, some replicas still
  finish their tasks and others have nothing to do (their prefetched work cannot move
  to them): the idle ones go, together, since they hold nothing and nothing waits for
  them.

Without a busy map the rules scale in as before, and the backend lets Kubernetes pick
the pods; the decision says so.
"""

from __future__ import annotations

from autoscaler.policy.model import Decision
from autoscaler.policy.tick import Tick
from batchctl.reasons import Action, Reason
from batchctl.units import format_duration

NO_BUSY_MAP = "no busy map (Celery events off): Kubernetes picks which pods stop"


def spare_busy(c: Tick, d: Decision) -> Decision:
    """`d` as a step down that stops no busy replica (see the module docstring)."""
    if d.desired >= d.current or d.reason == Reason.MANUAL_OVERRIDE:
        return d
    idle = c.obs.idle_replicas
    if idle is None:
        return Decision(d.queue, d.desired, d.current, d.reason, d.action, _and(d, NO_BUSY_MAP))
    going = d.current - d.desired
    if idle >= going:
        return d
    if idle > 0:
        desired = d.current - idle
        detail = _and(d, f"only {idle} of {d.current} replicas idle: those go")
        return Decision(d.queue, desired, d.current, d.reason, d.action, detail)
    b = c.batch
    if b.max_task_seconds > b.busy_wait_seconds:
        why = (
            f"every replica busy, and tasks may outlast any wait (max_task_seconds "
            f"{b.max_task_seconds:g} > busy_wait_seconds {b.busy_wait_seconds:g}): the grace "
            "period lets them finish"
        )
        return Decision(d.queue, d.desired, d.current, d.reason, d.action, _and(d, why))
    since = c.tracked.busy_since
    waited = c.now - since if since is not None else 0.0
    if waited >= b.busy_wait_seconds:
        why = f"every replica still busy after {format_duration(waited)}: stepping down anyway"
        return Decision(d.queue, d.desired, d.current, d.reason, d.action, _and(d, why))
    detail = (
        f"{d.reason}: every one of {d.current} replicas runs or holds tasks; waiting for an "
        f"idle one ({format_duration(waited)} of at most {format_duration(b.busy_wait_seconds)})"
    )
    return Decision(d.queue, d.current, d.current, Reason.BUSY_WORKERS, Action.HOLD, detail)


def idle_replicas(c: Tick) -> Decision | None:
    idle = c.obs.idle_replicas
    b = c.batch
    if idle is None or idle == 0 or c.obs.waiting > 0 or c.obs.work == 0:
        return None
    if c.slack_for < b.step_interval_seconds:
        return None
    keep = max(1, b.min_replicas, c.floor, c.current - idle)
    if keep >= c.current:
        return None
    detail = (
        f"nothing waiting for {c.slack_for:.0f}s; {idle} of {c.current} replicas idle while "
        f"the others finish {c.obs.busy} in flight or running"
    )
    return c.to(keep, Reason.IDLE_REPLICAS, detail)


def _and(d: Decision, more: str) -> str:
    return f"{d.detail}; {more}" if d.detail else more
