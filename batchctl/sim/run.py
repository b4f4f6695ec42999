"""One run: a trace replayed second by second under a controller, and its metrics.

`simulate` runs our policy and the KEDA + HPA baseline on the same trace with the same
caps; `run` replays one controller and measures (replica-seconds count every pod that
exists, starting and terminating ones included; drain time is from the last arrival to
the moment nothing is waiting, in flight or due for redelivery, completion time from the
start of the trace to that moment; the physical floor is the run time of every task
started divided by the workers' concurrency: what perfectly packed replicas would cost).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from autoscaler.policy import PRECEDENCE, Step, effective_cap
from batchctl.config import BatchConfig, Config
from batchctl.sim.controllers import (
    BASELINE,
    OURS,
    Controller,
    KedaController,
    PolicyController,
    keda_settings,
)
from batchctl.sim.trace import Trace, TraceError
from batchctl.sim.world import World


@dataclass
class Series:
    """One value per simulated second."""

    waiting: list[int] = field(default_factory=list)
    in_flight: list[int] = field(default_factory=list)  # prefetched + running
    replicas: list[int] = field(default_factory=list)  # spec.replicas
    pending: list[int] = field(default_factory=list)  # pods that will never be ready
    pods: list[int] = field(default_factory=list)  # existing pods, any phase


@dataclass
class RunResult:
    name: str
    metrics: dict[str, Any]
    series: Series
    reasons: dict[str, int] = field(default_factory=dict)
    # Our policy's steps down as (second, reason); empty for the baseline.
    downs: list[tuple[float, str]] = field(default_factory=list)


def run(
    trace: Trace,
    batch: BatchConfig,
    controller: Controller,
    *,
    thresholds: Sequence[int] = (100, 500, 1000),
    cap: int | None = None,
    check: bool = False,
) -> RunResult:
    """Replay `trace` under `controller`; `check` asserts conservation every second."""
    world = World(trace, batch, controller.grace_seconds)
    cap = effective_cap(batch) if cap is None else cap
    arrivals = dict(trace.arrivals)
    last = trace.last_arrival
    series = Series()
    drained_at: float | None = None
    t = 0
    while True:
        if t in arrivals:
            world.enqueue(float(t), arrivals[t])
        world.advance(t)
        if check:
            world.check_conservation()
        # The controller looks at the end of the second; its change applies from t + 1.
        view = world.view(float(t + 1))
        work = view.waiting + world.in_flight() + len(world.redeliver)
        series.waiting.append(view.waiting)
        series.in_flight.append(world.in_flight())
        if t >= last and work == 0 and drained_at is None:
            drained_at = float(t + 1)
        desired = controller(view)
        if desired is not None and desired != world.spec:
            if desired < world.spec and (costs := controller.deletion_costs(view)) is not None:
                world.annotate(costs)
            world.scale(desired, float(t + 1))
        # Replicas and pods as they stand for the next second, so the last sample is 0.
        series.replicas.append(world.spec)
        series.pods.append(len(world.pods))
        series.pending.append(sum(1 for p in world.pods if math.isinf(p.ready_at)))
        t += 1
        if t > last and drained_at is not None and not world.pods and world.spec == 0:
            break
        if t > last + trace.tail_seconds:
            break
    metrics = _metrics(trace, world, series, drained_at, cap, thresholds[-1])
    finish_by = getattr(controller, "finish_by", None)
    if finish_by is not None:
        metrics["deadline_met"] = drained_at is not None and drained_at <= finish_by
    reasons = getattr(controller, "reasons", {})
    downs = getattr(controller, "downs", [])
    return RunResult(controller.name, metrics, series, dict(reasons), list(downs))


def _metrics(
    trace: Trace,
    world: World,
    series: Series,
    drained_at: float | None,
    cap: int,
    top: int,
) -> dict[str, Any]:
    reps = series.replicas
    ups = [max(0, b - a) for a, b in zip([0, *reps[:-1]], reps, strict=True)]
    active_pods = series.pods  # terminating pods are over cap only by what they finish
    violations = sum(1 for r in reps if r > cap)
    floor = world.task_seconds / trace.worker_concurrency
    return {
        "replica_seconds": sum(series.pods),
        "floor_replica_seconds": round(floor),
        "floor_ratio": round(sum(series.pods) / floor, 3) if floor > 0 else None,
        "never_ready_pod_seconds": sum(series.pending),
        "drain_seconds": None if drained_at is None else drained_at - trace.last_arrival,
        "completion_seconds": drained_at,
        "peak_waiting": max(series.waiting, default=0),
        "peak_replicas": max(reps, default=0),
        "max_step_up_per_minute": _window_max(ups, 60),
        "scale_actions": sum(1 for a, b in zip([0, *reps[:-1]], reps, strict=True) if a != b),
        "inflight_interrupted": world.interrupted,
        "running_at_stop": world.running_at_stop,
        "cap_violations": violations,
        "seconds_above_1000": sum(1 for w in series.waiting if w >= top),
        # Beyond the required fields: what the numbers above cost or hide.
        "peak_pods": max(active_pods, default=0),
        "messages": world.arrived,
        "completed": world.completed,
        "lost": world.lost,
        "left_undone": world.arrived - world.completed - world.lost,
        "mean_wait_seconds": round(world.wait_sum / world.started, 2) if world.started else 0.0,
        "max_wait_seconds": round(world.wait_max, 1),
        "simulated_seconds": len(reps),
    }


def _window_max(increments: Sequence[int], width: int) -> int:
    """The largest sum of `increments` over any `width` consecutive seconds."""
    best = acc = 0
    for i, v in enumerate(increments):
        acc += v
        if i >= width:
            acc -= increments[i - width]
        best = max(best, acc)
    return best


def sim_config(config: Config, trace: Trace) -> tuple[Config, BatchConfig]:
    """The config narrowed to the trace's batch, with the trace's worker shape."""
    batch = config.batch(trace.queue) if trace.queue else config.batches[0]
    if batch is None:
        raise TraceError(f"queue {trace.queue!r} is not a configured batch")
    batch = batch.model_copy(
        update={
            "worker_concurrency": trace.worker_concurrency,
            "prefetch_multiplier": trace.prefetch_multiplier,
            # The typical task time a site would configure for planning deadlines.
            "task_seconds": batch.task_seconds or trace.task_mean,
        }
    )
    return config.model_copy(update={"batches": (batch,)}), batch


def simulate(
    trace: Trace,
    config: Config,
    baseline: str | None = "keda",
    *,
    check: bool = False,
    precedence: Sequence[Step] = PRECEDENCE,
    events: bool = False,
    finish_by: float | None = None,
) -> dict[str, RunResult]:
    """Run our policy (and the baseline) on the trace with the same caps.

    `precedence` replaces our policy's rules (benchmarks/scale_down_pace.py); with
    `events` our policy also sees running tasks, completions and the busy map (Celery's
    events); `finish_by` (seconds from the trace's start) gives our claim a deadline.
    """
    cfg, batch = sim_config(config, trace)
    # Both get the tighter of the batch's cap and the global budget.
    cap = min(effective_cap(batch), cfg.autoscaler.global_max_replicas)
    thresholds = cfg.thresholds
    results = {
        OURS: run(
            trace,
            batch,
            PolicyController(cfg, batch.queue, precedence, events=events, finish_by=finish_by),
            thresholds=thresholds,
            cap=cap,
            check=check,
        )
    }
    if baseline == "keda":
        ctl = KedaController(keda_settings(cap), finish_by=finish_by)
        results[BASELINE] = run(trace, batch, ctl, thresholds=thresholds, cap=cap, check=check)
    return results
