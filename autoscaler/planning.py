"""What it takes to finish one batch by a time, from what is known now (pure).

`batchctl plan BATCH --finish-by TIME` asks it, and `batchctl claim BATCH --finish-by
TIME` refuses a deadline it says the caps cannot meet. The arithmetic is the policy's own
(autoscaler/policy/pacing.py), so what `plan` promises is what the autoscaler then
paces to; the inputs come from here:

- the work: waiting + in flight, from the broker (the caller reads it);
- the pace per replica: measured by the exporter (its /api/v1/snapshot: the batch's
  completions per minute divided by its ready replicas), else `--task-seconds`, else
  the batch's `task_seconds` (worker_concurrency / task_seconds); none of them: no plan;
- the cap: the batch's (max_replicas within the size bands) and the global budget;
- where the batch stands: its replicas in the snapshot (0 without one), the step pace.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from autoscaler.policy import effective_cap
from autoscaler.policy.pacing import Plan, Ramp, plan
from batchctl.config import Config
from batchctl.cost import Cost
from exporter.snapshot import Snapshot


@dataclass(frozen=True)
class BatchPlan:
    """One batch's plan for a deadline, and where its numbers came from."""

    queue: str
    now: float  # unix seconds
    finish_by: float  # unix seconds
    plan: Plan
    pace_from: str  # what the pace per replica was taken from, in a few words
    cost: Cost  # what the replicas the plan runs would cost

    def to_json(self) -> dict[str, object]:
        p = self.plan

        def at(seconds: float) -> float | None:
            return None if math.isinf(seconds) else round(self.now + seconds, 3)

        return {
            "queue": self.queue,
            "finish_by": self.finish_by,
            "work": p.work,
            "pace_per_replica": round(p.rate, 4),
            "pace_from": self.pace_from,
            "cap": p.cap,
            "replicas": p.replicas,
            "feasible": p.feasible,
            "expected_end": at(p.finish_seconds),
            "earliest_end": at(p.earliest_seconds),
            "cost": self.cost.to_json(),
        }


def pace(
    cfg: Config, queue: str, snap: Snapshot | None, task_seconds: float | None
) -> tuple[float, str] | None:
    """(tasks per second per ready replica, where from), or None when nothing says."""
    batch = cfg.batch(queue)
    if batch is None:
        return None
    if snap is not None:
        progress = snap.progress.get(queue)
        q = snap.queue(queue)
        ready = q.ready_replicas if q is not None else None
        if progress is not None and progress.rate_per_minute and ready:
            source = "events" if progress.rate_source == "events" else "an estimate"
            return progress.rate_per_minute / 60 / ready, f"measured ({source})"
    if task_seconds is not None:
        return batch.worker_concurrency / task_seconds, "--task-seconds"
    if batch.task_seconds is not None:
        return batch.worker_concurrency / batch.task_seconds, "task_seconds (config)"
    return None


def batch_plan(
    cfg: Config,
    queue: str,
    work: int,
    finish_by: float,
    now: float,
    *,
    snap: Snapshot | None = None,
    task_seconds: float | None = None,
) -> BatchPlan | None:
    """The plan for `queue` to finish `work` by `finish_by`; None without a pace."""
    batch = cfg.batch(queue)
    found = pace(cfg, queue, snap, task_seconds)
    if batch is None or found is None:
        return None
    rate, source = found
    q = snap.queue(queue) if snap is not None else None
    current = q.replicas if q is not None and q.replicas is not None else 0
    ready = q.ready_replicas if q is not None and q.ready_replicas is not None else 0
    ramp = Ramp(current, ready, batch.step_up, batch.step_interval_seconds)
    cap = min(effective_cap(batch), cfg.autoscaler.global_max_replicas)
    p = plan(work, rate, finish_by - now, cap, ramp)
    cost = Cost(p.replica_seconds, cfg.prices_of(queue))
    return BatchPlan(queue, now, finish_by, p, source, cost)
