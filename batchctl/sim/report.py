"""The JSON document of a simulation: the inputs that matter, each policy's metrics, ratios."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from autoscaler.policy import effective_cap
from batchctl.config import Config
from batchctl.sim.controllers import BASELINE, OURS
from batchctl.sim.run import RunResult, sim_config
from batchctl.sim.trace import Trace


def report(trace: Trace, config: Config, results: Mapping[str, RunResult]) -> dict[str, Any]:
    """The JSON document: the inputs that matter, each policy's metrics, and the ratios."""
    _, batch = sim_config(config, trace)
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
            "interval_seconds": config.autoscaler.interval_seconds,
            "max_task_seconds": batch.max_task_seconds,
        },
        "policies": {name: r.metrics for name, r in results.items()},
    }
    if OURS in results:
        out["policies"][OURS]["reasons"] = results[OURS].reasons
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
