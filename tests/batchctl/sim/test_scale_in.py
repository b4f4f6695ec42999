"""The simulator's scale-in pod by pod: the ReplicaSet's ranking, our busy map, and the
standard traces on which batchctl stops no pod that runs a task."""

from __future__ import annotations

import heapq

import pytest

from batchctl.config import load_config
from batchctl.sim import BASELINE, OURS, load_trace, simulate
from batchctl.sim.world import World
from tests.support.paths import ROOT
from tests.support.sim import TRACES, cfg, trace

STANDARD = sorted([*TRACES.glob("*.yaml"), *TRACES.glob("failures/*.yaml")])
SUITE = load_config(ROOT / "benchmarks" / "suite-config.yaml")


@pytest.mark.parametrize("path", STANDARD, ids=[p.stem for p in STANDARD])
def test_the_standard_traces_stop_no_busy_pod(path: object) -> None:
    """With the busy map (workers send events) no scale-down stops a pod that runs a
    task, and none is cut off (the KEDA+HPA model's count: the next test, and the
    benchmark)."""
    results = simulate(load_trace(path), SUITE, baseline=None, events=True)  # type: ignore[arg-type]
    ours = results[OURS].metrics
    assert (ours["running_at_stop"], ours["inflight_interrupted"]) == (0, 0)
    assert ours["left_undone"] == 0


def test_long_tasks_keda_stops_busy_pods_and_ours_waits() -> None:
    """Long tasks: the ReplicaSet's newest-first choice stops busy pods under KEDA+HPA;
    without events ours did too (the grace period saved them), with the busy map none."""
    t = trace(arrivals=[[0, 400]], task_seconds={"mean": 60.0, "p99": 280.0})
    with_map = simulate(t, cfg(step_up=2), events=True)
    blind = simulate(t, cfg(step_up=2), events=False)[OURS].metrics
    assert with_map[OURS].metrics["running_at_stop"] == 0
    assert with_map[BASELINE].metrics["running_at_stop"] > 0
    assert blind["running_at_stop"] > 0  # today's behaviour without events
    assert blind["inflight_interrupted"] == 0  # ... saved by the max_task_seconds grace


@pytest.mark.parametrize(
    ("costs", "stopped", "busy_stops"),
    [({}, {2, 1}, 1), ({0: 0, 1: 0, 2: 1002}, {1, 0}, 0)],
    ids=["no costs: the newest go, busy or not", "costs: the idle ones go"],
)
def test_the_replicaset_removes_the_lowest_deletion_cost_first(
    costs: dict[int, int], stopped: set[int], busy_stops: int
) -> None:
    """Three ready pods, the newest running a task; 3 -> 1."""
    w = World(trace(arrivals=[[0, 0]]), cfg().batches[0], grace_seconds=300)
    w.scale(3, 0.0)
    w.advance(30)  # all ready (pod_start_seconds 20)
    heapq.heappush(w.pods[2].running, (500.0, 0, 30.0))  # the newest runs a task
    w.annotate(costs)
    w.scale(1, 31.0)
    assert {p.id for p in w.pods if p.terminating} | ({0, 1, 2} - {p.id for p in w.pods}) == stopped
    assert w.running_at_stop == busy_stops
