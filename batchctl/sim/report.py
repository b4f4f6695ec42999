"""The JSON document of a simulation: the inputs that matter, each policy's metrics, ratios."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from autoscaler.policy import effective_cap
from autoscaler.policy.pacing import Ramp, plan
from batchctl.config import BatchConfig, Config
from batchctl.sim.controllers import BASELINE, OURS
from batchctl.sim.run import RunResult, sim_config
from batchctl.sim.trace import Trace


def report(
    trace: Trace,
    config: Config,
    results: Mapping[str, RunResult],
    finish_by: float | None = None,
) -> dict[str, Any]:
    """The JSON document: the inputs that matter, each policy's metrics, the ratios, and
    with `finish_by` (seconds from the start) whether the deadline can be and was met."""
    cfg, batch = sim_config(config, trace)
    out: dict[str, Any] = {
        "trace": {
            "name": trace.name,
            "messages": trace.total,
            "last_arrival_second": trace.last_arrival,
            "task_seconds": {"mean": trace.task_mean, "p99": trace.task_p99},
            "worker_concurrency": trace.worker_concurrency,
            "prefetch_multiplier": trace.prefetch_multiplier,
            "pod_start_seconds": trace.pod_start_seconds,
            "priorities": {str(s): v for s, v in trace.priorities},
            "acks_late": trace.acks_late,
        },
        "config": {
            "max_replicas": effective_cap(batch),
            "global_max_replicas": config.autoscaler.global_max_replicas,
            "step_up": batch.step_up,
            "step_interval_seconds": batch.step_interval_seconds,
            "target_drain_seconds": batch.target_drain_seconds,
            "idle_after_seconds": batch.idle_after_seconds,
            "adaptive_idle": batch.adaptive_idle,
            "from_zero_interval_seconds": cfg.from_zero_interval_of(batch),
            "interval_seconds": config.autoscaler.interval_seconds,
            "max_task_seconds": batch.max_task_seconds,
        },
        "policies": {name: r.metrics for name, r in results.items()},
    }
    if OURS in results:
        out["policies"][OURS]["reasons"] = results[OURS].reasons
    if finish_by is not None:
        cap = min(effective_cap(batch), cfg.autoscaler.global_max_replicas)
        out["deadline"] = deadline_report(trace, batch, cap, finish_by)
    if OURS in results and BASELINE in results:
        out["ratios"] = {
            k: _ratio(results[OURS].metrics[k], results[BASELINE].metrics[k])
            for k in ("replica_seconds", "drain_seconds")
        }
    return out


def _ratio(ours: float | None, theirs: float | None) -> float | None:
    if ours is None or theirs is None or theirs == 0:
        return None
    return round(ours / theirs, 3)


def deadline_report(trace: Trace, batch: BatchConfig, cap: int, finish_by: float) -> dict[str, Any]:
    """Whether the caps can finish the trace by `finish_by`, planned at its start with
    every message of the trace and the configured task time (autoscaler/policy/
    pacing.py): `feasible`, and `replicas_needed` (None: no number of replicas can).
    Work that arrives after the deadline cannot be done by it."""
    rate = batch.worker_concurrency / (batch.task_seconds or trace.task_mean)
    ramp = Ramp(0, 0, batch.step_up, batch.step_interval_seconds, trace.pod_start_seconds)
    p = plan(trace.total, rate, float(finish_by), cap, ramp)
    late_work = trace.last_arrival >= finish_by
    return {
        "finish_by_seconds": finish_by,
        "feasible": p.feasible and not late_work,
        "replicas_needed": p.replicas,
        "cap": cap,
        "why": (
            "messages arrive after the deadline"
            if late_work
            else None
            if p.feasible
            else f"needs {p.replicas} replicas, cap {cap}"
            if p.replicas is not None
            else "no number of replicas finishes in time"
        ),
        "plan": p.to_json(),
    }
