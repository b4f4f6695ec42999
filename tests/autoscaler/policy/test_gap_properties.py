"""The gaps between work over random runs with Celery's events (hypothesis): what the
policy measures, when it lets an idle batch go early, and when it starts from zero."""

from __future__ import annotations

import math
from statistics import median_low
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autoscaler.policy import BatchObservation, Decision, PolicyState, Reason, decide
from autoscaler.policy.pacing import DEFAULT_STARTUP_SECONDS
from autoscaler.policy.tracking import GAP_SAMPLES
from autoscaler.policyconfig import policy_config
from batchctl.config import BatchConfig, Config
from tests.support.policy import HEALTHY, UNHEALTHY, held_by
from tests.support.properties import examples


@st.composite
def batches(draw: st.DrawFn) -> BatchConfig:
    return BatchConfig(
        queue="batch0",
        deployment="celery-batch0",
        max_replicas=draw(st.integers(1, 5)),
        min_replicas=draw(st.integers(0, 1)),
        step_interval_seconds=draw(st.sampled_from([15.0, 60.0])),
        target_drain_seconds=draw(st.sampled_from([60.0, 600.0])),
        idle_after_seconds=draw(st.sampled_from([0.0, 30.0, 120.0])),
        adaptive_idle=draw(st.booleans()),
        from_zero_interval_seconds=draw(st.sampled_from([0.0, 60.0, 180.0])),
    )


@st.composite
def ticks(draw: st.DrawFn) -> dict[str, Any]:
    # Quiet ticks, small work (a few tasks, the night's bursts) and now and then a lot.
    kind = draw(st.sampled_from(["quiet"] * 4 + ["small"] * 3 + ["big"]))
    waiting = {"quiet": 0, "small": draw(st.sampled_from([0, 1, 3])), "big": 5000}[kind]
    busy = kind != "quiet"
    return {
        "dt": draw(st.sampled_from([5.0, 15.0, 15.0, 30.0, 60.0])),
        "waiting": waiting,
        "in_flight": draw(st.integers(0, 4)) if busy else 0,
        "active": draw(st.integers(0, 4)) if busy else 0,
        "done": draw(st.sampled_from([0, 1, 3, 5])),  # completions since the last tick
        "age": draw(st.sampled_from([0.0, 30.0, 170.0])),
        "ready_lag": draw(st.booleans()),
        "guard": draw(st.sampled_from([HEALTHY] * 5 + [UNHEALTHY])),
        "data_ok": draw(st.sampled_from([True] * 7 + [False])),
    }


class Reference:
    """The gaps as tests/autoscaler/policy/test_gaps.py describes them, kept apart from
    the policy's own bookkeeping."""

    def __init__(self) -> None:
        self.quiet_since: float | None = None
        self.gaps: tuple[float, ...] = ()
        self.completed: int | None = None

    def see(self, o: BatchObservation, now: float) -> None:
        if not o.data_ok:
            self.quiet_since, self.completed = None, None
            return
        moved = self.completed is not None and (o.completed or 0) > self.completed
        if self.quiet_since is not None and (o.work > 0 or moved):
            self.gaps = (*self.gaps, now - self.quiet_since)[-GAP_SAMPLES:]
            self.quiet_since = None
        if o.work == 0 and self.quiet_since is None:
            self.quiet_since = now
        self.completed = o.completed


@given(batches(), st.lists(ticks(), min_size=20, max_size=80))
@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_gaps_over_runs(b: BatchConfig, run: list[dict[str, Any]]) -> None:
    cfg = Config(batches=(b,))
    policy = policy_config(cfg)
    interval = cfg.from_zero_interval_of(b)
    state, ref = PolicyState(), Reference()
    now, replicas, completed = 0.0, 0, 0
    idle_from: float | None = None
    last_start: float | None = None
    for t in run:
        now += t["dt"]
        completed += t["done"]
        o = BatchObservation(
            queue="batch0",
            waiting=t["waiting"],
            in_flight=t["in_flight"],
            oldest_age_seconds=t["age"] if t["waiting"] else 0.0,
            replicas=replicas,
            ready_replicas=max(0, replicas - 1) if t["ready_lag"] else replicas,
            claim=held_by("a", now + 3600),
            guards=(t["guard"],),
            data_ok=t["data_ok"],
            active=t["active"],
            completed=completed,
            idle_replicas=replicas if t["active"] + t["in_flight"] == 0 else 0,
        )
        idle_from = None if not o.data_ok or o.work > 0 else (idle_from or now)
        ref.see(o, now)
        (d,), state = decide([o], state, policy, now)
        bs = state.batch("batch0")
        if o.data_ok:
            assert bs.gaps == ref.gaps and bs.quiet_since == ref.quiet_since
        _check(b, o, d, now, idle_from, interval, last_start, bs.startup_seconds)
        if d.reason == Reason.IDLE_GAP:
            # The gaps the reference measured: most of the last ones longer than a start.
            assert ref.gaps and median_low(ref.gaps) > (bs.startup_seconds or 30.0)
        _check_start(b, o, d, now, interval, last_start, bs.rate_per_replica, bs.startup_seconds)
        if d.current == 0 and d.desired > 0:
            last_start = now
        if o.data_ok:
            replicas = d.desired


def _check(
    b: BatchConfig,
    o: BatchObservation,
    d: Decision,
    now: float,
    idle_from: float | None,
    interval: float,
    last_start: float | None,
    startup: float | None,
) -> None:
    start = startup or DEFAULT_STARTUP_SECONDS
    if d.reason == Reason.IDLE_GAP:
        # Only with events (the busy map too), for an idle batch, when the gaps say so.
        assert b.adaptive_idle and o.work == 0 and d.desired == b.min_replicas < d.current
    if d.desired == 0 < d.current and (idle_from is None or now - idle_from < b.idle_after_seconds):
        # To zero before idle_after (the paced steps stop at one): only for the gaps.
        assert d.reason == Reason.IDLE_GAP, d
    if d.reason == Reason.FROM_ZERO_INTERVAL:
        assert d.current == d.desired == 0 and o.waiting > 0
        assert last_start is not None and now - last_start < interval
        assert o.oldest_age_seconds + start < interval
        assert all(g.status == "healthy" for g in o.guards)


def _check_start(
    b: BatchConfig,
    o: BatchObservation,
    d: Decision,
    now: float,
    interval: float,
    last_start: float | None,
    rate: float | None,
    startup: float | None,
) -> None:
    """A start from zero within the interval of the last one: only for work that may not
    wait (more than one replica drains within the target, an unknown pace, the oldest
    message waiting as long as the interval allows)."""
    if not (d.current == 0 and d.desired > 0 and last_start is not None):
        return
    if now - last_start >= interval:
        return
    drain = math.inf if not rate or rate <= 0 else o.work / rate
    start = startup or DEFAULT_STARTUP_SECONDS
    assert drain > b.target_drain_seconds or o.oldest_age_seconds + start >= interval, (
        drain,
        o.oldest_age_seconds,
    )
