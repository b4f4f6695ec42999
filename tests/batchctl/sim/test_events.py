"""The simulator with Celery's task events: running tasks seen, throughput from completions."""

from __future__ import annotations

import dataclasses

import pytest

from batchctl.sim import OURS, load_trace, simulate
from tests.support.sim import TRACES, cfg, trace


@pytest.mark.parametrize("events", [False, True])
@pytest.mark.parametrize("acks_late", [False, True])
def test_messages_are_conserved_with_and_without_events(acks_late: bool, events: bool) -> None:
    t = trace(
        arrivals=[[0, 300], [90, 20], [500, 100]],
        task_seconds={"mean": 15.0, "p99": 80.0},
        acks_late=acks_late,
    )
    m = simulate(t, cfg(max_replicas=4), baseline=None, events=events, check=True)[OURS].metrics
    assert m["completed"] == 420 and m["lost"] == 0 and m["left_undone"] == 0
    assert m["inflight_interrupted"] == 0


def test_with_early_acks_only_events_keep_busy_pods_from_being_stopped() -> None:
    """trickle: a 5 s task every 12 s. Without events a running task is invisible with
    early acks, so the policy goes to zero while tasks run (they finish in the grace
    period); with events it waits for them."""
    t = dataclasses.replace(load_trace(TRACES / "trickle.yaml"), acks_late=False)
    blind = simulate(t, cfg(), baseline=None)[OURS].metrics
    seeing = simulate(t, cfg(), baseline=None, events=True)[OURS].metrics
    assert blind["running_at_stop"] > 0
    assert seeing["running_at_stop"] == 0
    assert seeing["scale_actions"] < blind["scale_actions"]


def test_completions_measure_throughput_that_arrivals_hide() -> None:
    """Steady arrivals about as fast as two replicas go: the queue falls slowly, so without
    events the policy sees little throughput and keeps adding replicas; completions show
    that two keep up."""
    arrivals = [[s, 5] for s in range(0, 1800)]
    t = trace(arrivals=arrivals, task_seconds={"mean": 1.5, "p99": 4.0}, acks_late=True)
    blind = simulate(t, cfg(max_replicas=5), baseline=None)[OURS].metrics
    seeing = simulate(t, cfg(max_replicas=5), baseline=None, events=True)[OURS].metrics
    assert seeing["replica_seconds"] < blind["replica_seconds"]
    assert seeing["peak_replicas"] <= blind["peak_replicas"]
