"""The gaps between work as the policy measures them (autoscaler/policy/tracking.py), and
the two rules that use them over a run of ticks (autoscaler/policy/gaps.py)."""

from __future__ import annotations

import math
from typing import Any

import pytest

from autoscaler.policy import BatchObservation, BatchState, Decision, PolicyState, Reason, decide
from autoscaler.policy.tracking import GAP_SAMPLES
from autoscaler.policyconfig import policy_config
from tests.support.policy import NOW, config, obs, ours


def track(ticks: list[dict[str, Any]], start: BatchState | None = None) -> BatchState:
    """The state after deciding on `ticks`, 15 s apart, the replicas as decided."""
    policy = policy_config(config(adaptive_idle=False))
    state = PolicyState({"batch0": start or ours(1)})
    replicas = (start or ours(1)).last_desired or 0
    for i, fields in enumerate(ticks):
        o = obs(**{"replicas": replicas, **fields})
        (d,), state = decide([o], state, policy, NOW + 15 * i)
        replicas = d.desired
    return state.batch("batch0")


BUSY = {"waiting": 5, "completed": 10}
QUIET = {"completed": 10}


def test_a_gap_runs_from_the_first_quiet_tick_to_the_tick_that_sees_work() -> None:
    bs = track([BUSY, QUIET, QUIET, QUIET, BUSY])
    assert bs.gaps == (45.0,) and bs.quiet_since is None


def test_a_task_that_came_and_went_between_two_ticks_ends_a_gap() -> None:
    # Quiet at 15 s and 30 s, but a task completed between 30 s and 45 s with nothing
    # seen: the gap ended there (one tick after it began), and a new one starts.
    bs = track([BUSY, QUIET, QUIET, {"completed": 11}, {"completed": 11}])
    assert bs.gaps == (30.0,)
    assert bs.quiet_since == NOW + 45


def test_completions_of_work_seen_before_are_not_a_new_gap() -> None:
    # The tasks seen at 0 s complete by 15 s: the quiet period starts at 15 s.
    bs = track([{"waiting": 0, "active": 3, "completed": 7}, {"completed": 10}])
    assert bs.gaps == () and bs.quiet_since == NOW + 15


def test_without_events_only_seen_work_ends_a_gap() -> None:
    bs = track([{"waiting": 5}, {}, {}, {"waiting": 1}])
    assert bs.gaps == (30.0,)


def test_only_the_last_gaps_are_kept() -> None:
    ticks: list[dict[str, Any]] = []
    for quiet in range(1, GAP_SAMPLES + 3):
        ticks += [BUSY] + [QUIET] * quiet
    bs = track([*ticks, BUSY])
    assert bs.gaps == tuple(15.0 * q for q in range(3, GAP_SAMPLES + 3))


def test_a_gap_in_the_data_restarts_the_quiet_period_and_keeps_the_gaps() -> None:
    start = ours(1, gaps=(60.0,))
    bs = track([BUSY, QUIET, {"data_ok": False}, QUIET, BUSY], start)
    assert bs.gaps == (60.0, 15.0)


def test_a_start_from_zero_is_remembered_and_no_other_step_up() -> None:
    bs = track([{"waiting": 5}], BatchState(last_desired=0, last_seen_replicas=0))
    assert bs.started_from_zero_at == NOW
    bs = track([{"waiting": 5000}] * 6, ours(1, rate_per_replica=1.0))
    assert bs.started_from_zero_at is None and bs.last_up_at is not None


Tick = tuple[float, BatchObservation, Decision]


def run(chunks: int, every: float = 60.0, **batch: Any) -> list[Tick]:
    """A night: 3 tasks every `every` seconds; pods ready 20 s after they are asked for;
    15 s ticks, each seeing the tasks that arrived with it, which a ready replica then
    runs within 5 s. A small world, so that the rules meet gaps and start-ups measured
    as the live loop measures them."""
    policy = policy_config(config(**batch))
    state = PolicyState({"batch0": BatchState(last_desired=0, last_seen_replicas=0)})
    replicas, ready_at, completed, waiting, queued_at = 0, math.inf, 0, 0, 0.0
    out = []
    for i in range(int(chunks * every // 15)):
        t = 15.0 * i
        if t % every == 0:
            queued_at = queued_at if waiting else t
            waiting += 3
        o = obs(
            waiting=waiting,
            oldest_age_seconds=t - queued_at if waiting else 0.0,
            replicas=replicas,
            ready_replicas=replicas if t >= ready_at else 0,
            completed=completed,
            idle_replicas=replicas,
        )
        (d,), state = decide([o], state, policy, NOW + t)
        out.append((t, o, d))
        if replicas == 0 and d.desired > 0:
            ready_at = t + 20
        replicas = d.desired
        if replicas and ready_at + 5 <= t + 15:  # done before the next tick
            completed, waiting = completed + waiting, 0
    return out


def starts(ticks: list[Tick]) -> list[float]:
    return [t for t, _, d in ticks if d.current == 0 and d.desired > 0]


def reasons(ticks: list[Tick]) -> set[Reason]:
    return {d.reason for _, _, d in ticks}


def test_a_night_of_small_bursts_starts_at_most_once_per_interval() -> None:
    night = run(60)
    # Once the gaps are measured (the first at 60 s), the batch goes on its first idle
    # tick, never after idle_after_seconds...
    assert Reason.IDLE_GAP in reasons(night) and Reason.IDLE_TO_ZERO not in reasons(night)
    # ... and starts again at most once per from_zero_interval_seconds (180 s): the
    # first at 0 s, then every 180 s.
    assert starts(night) == [180.0 * k for k in range(20)]
    # No message waits at 0 replicas longer than the interval.
    at_zero = [o.oldest_age_seconds for _, o, d in night if d.current == 0]
    assert 120 <= max(at_zero) <= 180


@pytest.mark.parametrize(
    ("batch", "fewer_starts"),
    [({"from_zero_interval_seconds": 0}, False), ({"adaptive_idle": False}, True)],
    ids=["no interval: a start a burst", "no adaptive idle: one replica all night"],
)
def test_each_half_alone(batch: dict[str, Any], fewer_starts: bool) -> None:
    night = run(60, **batch)
    both = run(60)
    if fewer_starts:
        # idle_after (120 s) outlasts every gap: the replica never goes.
        assert len(starts(night)) == 1
        assert sum(d.desired for *_, d in night) > 2 * sum(d.desired for *_, d in both)
    else:
        # A start for every burst but the second (the first replica is still there while
        # the first gap is measured): the interval is what spares them.
        assert len(starts(night)) == 59 > 2 * len(starts(both))
