"""The policy's state between ticks: throughput, idleness, overrides, step intervals."""

from __future__ import annotations

import pytest

from autoscaler.policy import PolicyState, Reason, decide
from autoscaler.policyconfig import policy_config
from tests.support.policy import NOW, config, obs, ours


def test_unconfigured_queues_are_ignored() -> None:
    decisions, state = decide(
        [obs(queue="celery", waiting=10)], PolicyState(), policy_config(config()), NOW
    )
    assert decisions == [] and dict(state.batches) == {}


def test_throughput_estimate_from_falling_work() -> None:
    policy = policy_config(config())
    state = PolicyState()
    work = 3000
    for i in range(12):
        o = obs(waiting=work, replicas=2)
        _, state = decide([o], state, policy, NOW + 15 * i)
        work -= 60  # 2 replicas at 2 messages/s each
    rate = state.batch("batch0").rate_per_replica
    assert rate is not None and rate == pytest.approx(2.0)


def test_an_empty_queue_says_nothing_about_throughput() -> None:
    policy = policy_config(config())
    state = PolicyState({"batch0": ours(2, rate_per_replica=2.0)})
    for i in range(5):
        _, state = decide([obs(in_flight=10 - 2 * i, replicas=2)], state, policy, NOW + 15 * i)
    assert state.batch("batch0").rate_per_replica == 2.0


def test_no_data_breaks_idle_continuity() -> None:
    policy = policy_config(config())
    state = PolicyState({"batch0": ours(1, idle_since=NOW - 110)})
    _, state = decide([obs(replicas=1, data_ok=False)], state, policy, NOW)
    decisions, state = decide([obs(replicas=1)], state, policy, NOW + 15)
    assert decisions[0].reason == Reason.IDLE
    assert state.batch("batch0").idle_since == NOW + 15


def test_override_lasts_manual_override_seconds() -> None:
    policy = policy_config(config(manual_override_seconds=300))
    state = PolicyState({"batch0": ours(2, rate_per_replica=1.0)})
    seen = []
    for i in range(0, 26):
        d, state = decide(
            [obs(waiting=5000, replicas=8 if i == 0 else seen[-1])], state, policy, NOW + 15 * i
        )
        seen.append(d[0].desired)
        if 15 * i < 300:
            assert d[0].reason == Reason.MANUAL_OVERRIDE and d[0].desired == 8
    assert seen[-1] < 8  # afterwards back under the cap


def test_a_change_that_did_not_land_is_retried_not_an_override() -> None:
    policy = policy_config(config())
    state = PolicyState({"batch0": ours(2, rate_per_replica=1.0, last_up_at=NOW - 600)})
    (d,), state = decide([obs(waiting=5000, replicas=2)], state, policy, NOW)
    assert d.desired == 3
    state = state.change_not_applied("batch0")
    assert state.change_not_applied("other") is not None
    (d,), state = decide([obs(waiting=5000, replicas=2)], state, policy, NOW + 60)
    assert (d.desired, d.reason) == (3, Reason.BACKLOG)


def test_from_zero_then_step_interval() -> None:
    policy = policy_config(config())
    state = PolicyState()
    replicas, ups = 0, []
    for i in range(12):
        now = NOW + 15 * i
        (d,), state = decide([obs(waiting=5000, replicas=replicas)], state, policy, now)
        if d.desired > replicas:
            ups.append((now - NOW, d.desired - replicas, d.reason))
        replicas = d.desired
    assert ups[0] == (0, 1, Reason.FROM_ZERO)
    assert [t for t, _, _ in ups] == [0, 60, 120]
    assert all(n == 1 for _, n, _ in ups)
