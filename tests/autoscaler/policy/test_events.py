"""The policy with Celery's task events: running tasks in the floor and in idleness, and
the throughput from completions (pure; the real workers are in test_events_floor.py)."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from autoscaler.policy import BatchState, PolicyState, Reason, decide, inflight_floor
from autoscaler.policy.tracking import advance
from autoscaler.policyconfig import batch_policy, policy_config
from batchctl.config import BatchConfig
from tests.support.policy import NOW, config, obs, ours


def run(ticks: list[dict[str, object]], start: BatchState, every: float = 15.0, **batch: object):  # type: ignore[no-untyped-def]
    """Decide tick after tick, each observation the previous decision's replicas."""
    policy = policy_config(config(**batch))
    state = PolicyState({"batch0": start})
    replicas = start.last_desired or 0
    out = []
    for i, fields in enumerate(ticks):
        o = obs(replicas=replicas, **fields)
        (d,), state = decide([o], state, policy, NOW + i * every)
        out.append(d)
        replicas = d.desired
    return out


def test_an_early_ack_batch_with_running_tasks_never_goes_to_zero() -> None:
    # Nothing waiting, nothing in `unacked` (early ack), two tasks running, for 10 minutes.
    busy = [{"active": 2, "completed": 0}] * 40
    decisions = run(busy, ours(1), idle_after_seconds=60)
    assert {d.desired for d in decisions} == {1}
    assert Reason.IDLE_TO_ZERO not in {d.reason for d in decisions}
    # The same batch without events looks idle and goes to 0 after idle_after_seconds.
    blind = run([{}] * 40, ours(1), idle_after_seconds=60)
    assert blind[-1].desired == 0 and Reason.IDLE_TO_ZERO in {d.reason for d in blind}


def test_idle_to_zero_waits_for_active_zero() -> None:
    ticks = [{"active": 1, "completed": 0}] * 10 + [{"active": 0, "completed": 1}] * 10
    decisions = run(ticks, ours(1), idle_after_seconds=60)
    # Not while the task runs; then idle_after_seconds after it ended (15 s ticks).
    assert all(d.desired == 1 for d in decisions[:10])
    to_zero = [i for i, d in enumerate(decisions) if d.reason == Reason.IDLE_TO_ZERO]
    assert to_zero and to_zero[0] == 10 + 4


def test_the_floor_counts_running_tasks_without_counting_them_twice() -> None:
    b = BatchConfig(queue="batch0", deployment="celery-batch0", worker_concurrency=4)
    # 16 prefetched fill one replica's window; 9 running need 3 replicas of 4 slots.
    assert inflight_floor(b, 16, 0) == 1
    assert inflight_floor(b, 0, 9) == 3
    # acks_late: the 9 running are in `unacked` too; the floor is the larger, not the sum.
    assert inflight_floor(b, 9, 9) == 3
    assert inflight_floor(b, 0, 0) == 0


def test_the_tail_steps_down_to_what_running_tasks_need() -> None:
    # 5 running (early ack, nothing in unacked), 3 replicas of 4 slots: one can go (the
    # rest is done soon), the second cannot: 5 running need 2.
    state = ours(3, rate_per_replica=1.0, last_up_at=NOW - 600, slack_since=NOW - 600)
    decisions = run(
        [{"active": 5, "completed": 100}] * 12,
        state,
        step_interval_seconds=60,
        idle_after_seconds=600,
    )
    assert decisions[0].reason == Reason.STEP_DOWN and decisions[0].desired == 2
    held = [d for d in decisions[1:] if d.reason == Reason.INFLIGHT_FLOOR]
    assert held and all(d.desired == 2 for d in decisions[1:])
    assert "5 running need 2" in held[0].detail


def test_throughput_comes_from_completions_when_known() -> None:
    b = batch_policy(BatchConfig(queue="batch0", deployment="celery-batch0"))
    before = BatchState(prev_work=1000, prev_waiting=1000, prev_completed=500, prev_at=NOW)
    # 60 s later: 120 completed by 2 replicas, while 100 more arrived (work fell by 20).
    o = obs(waiting=980, replicas=2, active=0, completed=620)
    after = advance(o, before, b, NOW + 60)
    assert after.rate_per_replica == 1.0  # 120 / 60 s / 2 replicas
    # Without events the fall of work is all there is: arrivals hide most of the work.
    blind = advance(obs(waiting=980, replicas=2), before, b, NOW + 60)
    assert blind.rate_per_replica is not None and math.isclose(blind.rate_per_replica, 20 / 60 / 2)


def test_a_counter_that_starts_over_gives_no_sample() -> None:
    b = batch_policy(BatchConfig(queue="batch0", deployment="celery-batch0"))
    before = BatchState(
        prev_work=100, prev_waiting=100, prev_completed=5000, prev_at=NOW, rate_per_replica=2.0
    )
    # The exporter restarted: its counter is back near 0. No sample, a new baseline.
    after = advance(obs(waiting=90, replicas=1, completed=3), before, b, NOW + 15)
    assert after.rate_per_replica == 2.0 and after.prev_completed == 3


@given(st.integers(0, 500), st.integers(0, 500), st.integers(0, 100), st.integers(1, 16))
def test_no_step_down_below_what_running_and_held_work_needs(
    waiting: int, in_flight: int, active: int, concurrency: int
) -> None:
    cfg = config(worker_concurrency=concurrency, prefetch_multiplier=1, max_replicas=10)
    b = cfg.batches[0]
    floor = inflight_floor(b, in_flight, active)
    for current in range(0, 11):
        o = obs(waiting=waiting, in_flight=in_flight, active=active, replicas=current)
        state = PolicyState(
            {"batch0": ours(current, idle_since=NOW - 3600, slack_since=NOW - 3600)}
        )
        (d,), _ = decide([o], state, policy_config(cfg), NOW)
        if d.desired < d.current:
            assert d.desired >= min(floor, d.current), (d, floor)
