"""Runs of whole traces: invariants of the model and each controller's promises."""

from __future__ import annotations

import itertools
import math

import pytest

from batchctl.sim import BASELINE, OURS, KedaController, PolicyController, keda, run, simulate
from tests.support.sim import cfg, trace


@pytest.mark.parametrize("acks_late", [False, True])
def test_messages_are_conserved_every_second(acks_late: bool) -> None:
    """waiting + prefetched + running + pending redelivery + completed + lost == enqueued."""
    t = trace(
        arrivals=[[0, 400], [50, 30], [400, 200]],
        priorities={0: 0.5, 3: 0.2, 9: 0.3},
        task_seconds={"mean": 20.0, "p99": 100.0},
        acks_late=acks_late,
        visibility_timeout_seconds=120,
    )
    results = simulate(t, cfg(max_replicas=4), check=True)  # check asserts it every second
    for r in results.values():
        m = r.metrics
        assert m["completed"] + m["lost"] + m["left_undone"] == m["messages"] == 630


def test_our_policy_loses_nothing_and_keeps_its_promises() -> None:
    t = trace(arrivals=[[0, 1500], [600, 300]], task_seconds={"mean": 30.0, "p99": 200.0})
    m = simulate(t, cfg(), check=True)[OURS].metrics
    assert m["completed"] == 1800 and m["lost"] == 0 and m["left_undone"] == 0
    assert m["inflight_interrupted"] == 0
    assert m["cap_violations"] == 0 and m["peak_replicas"] <= 5
    assert m["max_step_up_per_minute"] <= 1
    assert m["drain_seconds"] is not None


@pytest.mark.parametrize("acks_late", [False, True])
def test_our_steps_down_keep_the_step_interval(acks_late: bool) -> None:
    """Bursts with lulls between them: every step down but the drop to min_replicas comes
    at least step_interval_seconds after the policy's previous change."""
    t = trace(
        arrivals=[[0, 3000], [900, 600], [1500, 3000]],
        task_seconds={"mean": 20.0, "p99": 100.0},
        acks_late=acks_late,
    )
    config = cfg(step_up=2, step_interval_seconds=45, target_drain_seconds=300)
    r = simulate(t, config, baseline=None)[OURS]
    reasons = {reason for _, reason in r.downs}
    assert "idle_step_down" in reasons and "idle_to_zero" in reasons
    # The second at which each change of spec.replicas was decided.
    reps = r.series.replicas
    changes = [float(i + 1) for i in range(len(reps)) if reps[i] != (reps[i - 1] if i else 0)]
    downs = dict(r.downs)
    for before, at in itertools.pairwise(changes):
        if at in downs and downs[at] != "idle_to_zero":
            assert at - before >= 45, f"{downs[at]} at {at}s, {at - before:.0f}s after a change"


def test_step_up_follows_the_config() -> None:
    m = simulate(trace(arrivals=[[0, 5000]]), cfg(step_up=2), baseline=None)[OURS].metrics
    assert m["max_step_up_per_minute"] == 2


def test_keda_cuts_off_long_tasks_and_ours_does_not() -> None:
    """Tasks longer than the 30 s grace period: KEDA+HPA's scale-down kills them."""
    t = trace(arrivals=[[0, 150]], task_seconds={"mean": 60.0, "p99": 280.0})
    results = simulate(t, cfg())
    assert results[OURS].metrics["inflight_interrupted"] == 0
    keda_m = results[BASELINE].metrics
    assert keda_m["inflight_interrupted"] > 0
    assert keda_m["lost"] == keda_m["inflight_interrupted"]  # early acks: gone


def test_late_acks_redeliver_cut_off_tasks_after_the_visibility_timeout() -> None:
    t = trace(
        arrivals=[[0, 150]],
        task_seconds={"mean": 60.0, "p99": 280.0},
        acks_late=True,
        visibility_timeout_seconds=600,
    )
    m = simulate(t, cfg(), check=True)[BASELINE].metrics
    assert m["inflight_interrupted"] > 0 and m["lost"] == 0


def test_keda_sees_only_the_base_list() -> None:
    """All messages at priority 9: LLEN of the base list stays 0, KEDA never starts a pod."""
    t = trace(arrivals=[[0, 200]], priorities={9: 1.0}, tail_seconds=900)
    results = simulate(t, cfg())
    theirs = results[BASELINE].metrics
    assert theirs["replica_seconds"] == 0 and theirs["drain_seconds"] is None
    assert theirs["left_undone"] == 200
    ours = results[OURS].metrics
    assert ours["completed"] == 200 and ours["drain_seconds"] is not None


def test_controllers_share_the_world_rules() -> None:
    t = trace(arrivals=[[0, 50]])
    b = cfg().batches[0]
    for ctl in (PolicyController(cfg(), "batch0"), KedaController(keda.KedaSettings())):
        r = run(t, b, ctl, check=True)
        assert r.metrics["completed"] == 50
        assert r.series.replicas[-1] in (0, 1)
        assert math.isfinite(r.metrics["replica_seconds"])


def test_pods_that_never_start_are_not_multiplied() -> None:
    """A cluster with room for 2 pods: we stop one step past what became ready and say
    why; KEDA+HPA asks for the cap and pays for Pending pods the whole drain."""
    t = trace(arrivals=[[0, 6000]], max_ready_pods=2)
    results = simulate(t, cfg(max_replicas=5, step_interval_seconds=60), baseline="keda")
    ours, keda = results[OURS], results[BASELINE]
    assert ours.metrics["left_undone"] == 0 and keda.metrics["left_undone"] == 0
    assert max(ours.series.replicas) == 3  # 2 ready + the one that showed the lack of room
    assert max(keda.series.replicas) == 5
    assert ours.reasons.get("replicas_not_ready", 0) > 0
    assert ours.metrics["never_ready_pod_seconds"] < keda.metrics["never_ready_pod_seconds"] / 2
