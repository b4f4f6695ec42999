"""The policy's properties over random runs (hypothesis): what must hold whatever comes."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autoscaler.policy import (
    Action,
    BatchObservation,
    BatchState,
    Decision,
    GuardResult,
    GuardStatus,
    PolicyState,
    Reason,
    decide,
    effective_cap,
    inflight_floor,
)
from autoscaler.policyconfig import policy_config
from batchctl.claims import Claim
from batchctl.config import AutoscalerConfig, BatchConfig, Config
from tests.support.policy import HEALTHY, NOW, SHED, UNHEALTHY, UNKNOWN, UNKNOWN_SHED, held_by
from tests.support.properties import examples

GUARDS = st.sampled_from([HEALTHY, UNHEALTHY, UNKNOWN, SHED, UNKNOWN_SHED])
CLAIMS = st.sampled_from(["held", "expired", "none"])


@st.composite
def batch_configs(draw: st.DrawFn, i: int) -> BatchConfig:
    cap = draw(st.integers(0, 12))
    return BatchConfig(
        queue=f"batch{i}",
        deployment=f"celery-batch{i}",
        max_replicas=cap,
        allow_big=cap > 10,
        min_replicas=draw(st.integers(0, min(cap, 2))),
        step_up=draw(st.integers(1, 3)),
        step_interval_seconds=draw(st.sampled_from([15.0, 30.0, 60.0, 120.0])),
        target_drain_seconds=draw(st.sampled_from([60.0, 300.0, 600.0])),
        idle_after_seconds=draw(st.sampled_from([0.0, 30.0, 120.0])),
        manual_override_seconds=draw(st.sampled_from([0.0, 60.0, 300.0])),
        require_claim=draw(st.booleans()),
        worker_concurrency=draw(st.integers(1, 4)),
        prefetch_multiplier=draw(st.integers(1, 4)),
    )


@st.composite
def tick(draw: st.DrawFn, n: int) -> dict[str, Any]:
    return {
        "dt": draw(st.sampled_from([1.0, 5.0, 15.0, 15.0, 15.0, 60.0])),
        "batches": [
            {
                "waiting": draw(st.one_of(st.just(0), st.integers(0, 20), st.integers(0, 20_000))),
                "in_flight": draw(st.one_of(st.just(0), st.integers(0, 200))),
                "claim": draw(CLAIMS),
                "guards": tuple(draw(st.lists(GUARDS, max_size=2))),
                "data_ok": draw(st.booleans().map(lambda b: b or draw(st.booleans()))),
                # Someone else sets the replicas now and then.
                "manual": draw(st.one_of(st.none(), st.none(), st.none(), st.integers(0, 15))),
                "ready_lag": draw(st.booleans()),
            }
            for _ in range(n)
        ],
    }


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Config, list[dict[str, Any]]]:
    n = draw(st.integers(1, 3))
    cfg = Config(
        batches=tuple(draw(batch_configs(i)) for i in range(n)),
        autoscaler=AutoscalerConfig(global_max_replicas=draw(st.integers(0, 20))),
    )
    ticks = draw(st.lists(tick(n), min_size=1, max_size=40))
    return cfg, ticks


def _claim(kind: str, now: float) -> Claim | None:
    return {"held": held_by("a", now + 600), "expired": held_by("a", now - 1), "none": None}[kind]


@given(scenarios())
@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_properties_over_runs(scenario: tuple[Config, list[dict[str, Any]]]) -> None:
    """Invariants that hold on every tick of any run, whatever the inputs."""
    cfg, ticks = scenario
    policy = policy_config(cfg)
    budget = cfg.autoscaler.global_max_replicas
    state = PolicyState()
    now = 0.0
    replicas = {b.queue: 0 for b in cfg.batches}
    last_up = {b.queue: -math.inf for b in cfg.batches}
    last_change = {b.queue: -math.inf for b in cfg.batches}
    idle_from: dict[str, float | None] = {b.queue: None for b in cfg.batches}
    override_at: dict[str, float] = {}
    # What the policy last asked for: on its next look at the batch, anything else is
    # someone else's change (an intermediate change it never saw cannot count).
    asked: dict[str, int] = {}
    for t in ticks:
        now += t["dt"]
        observations = []
        for b, x in zip(cfg.batches, t["batches"], strict=True):
            if x["manual"] is not None:
                replicas[b.queue] = x["manual"]
            r = replicas[b.queue]
            if x["data_ok"] and b.queue in asked and r != asked[b.queue]:
                override_at[b.queue] = now
            observations.append(
                BatchObservation(
                    queue=b.queue,
                    waiting=x["waiting"],
                    in_flight=x["in_flight"],
                    oldest_age_seconds=0.0,
                    replicas=r,
                    ready_replicas=max(0, r - 1) if x["ready_lag"] else r,
                    claim=_claim(x["claim"], now),
                    guards=x["guards"],
                    data_ok=x["data_ok"],
                )
            )
            work = x["waiting"] + x["in_flight"]
            if not x["data_ok"] or work > 0:
                idle_from[b.queue] = None
            elif idle_from[b.queue] is None:
                idle_from[b.queue] = now
        total_before = sum(replicas.values())
        decisions, state = decide(observations, state, policy, now)
        assert [d.queue for d in decisions] == [b.queue for b in cfg.batches]
        for b, o, d in zip(cfg.batches, observations, decisions, strict=True):
            _check_decision(
                b, o, d, now, last_up[b.queue], idle_from[b.queue], override_at.get(b.queue)
            )
            if d.desired < d.current and d.reason != Reason.IDLE_TO_ZERO:
                # The scale-down pace: one step down per step interval after the policy's
                # last change of the batch, up or down; only the drop to min_replicas
                # after idle_after is exempt.
                gap = now - last_change[b.queue]
                assert gap >= b.step_interval_seconds, f"{d.reason} only {gap}s after a change"
            if d.desired > d.current:
                last_up[b.queue] = now
            if d.desired != d.current:
                last_change[b.queue] = now
            if o.data_ok:
                asked[b.queue] = d.desired
            replicas[b.queue] = d.desired
        total_after = sum(replicas.values())
        if any(d.desired > d.current for d in decisions):
            assert total_after <= max(budget, 0), "an up pushed the total over the budget"
        assert total_after <= max(total_before, budget)


def _check_decision(
    b: BatchConfig,
    o: BatchObservation,
    d: Decision,
    now: float,
    last_up: float,
    idle_from: float | None,
    override_at: float | None,
) -> None:
    cap = effective_cap(b)
    up = d.desired > d.current
    assert d.desired >= 0
    assert (d.action == Action.UP) == up and (d.action == Action.DOWN) == (d.desired < d.current)
    # Hands off without data and during a manual override.
    if not o.data_ok:
        assert d.desired == d.current and d.reason == Reason.NO_DATA
        return
    if override_at is not None and now - override_at < b.manual_override_seconds:
        assert d.desired == d.current
    # Never above a cap, never grow past one.
    assert d.desired <= max(d.current, cap)
    # Never below what the in-flight work needs (unless already below it).
    assert d.desired >= min(d.current, inflight_floor(b, o.in_flight))
    if up:
        assert all(g.status == GuardStatus.HEALTHY for g in o.guards), "up while a guard fails"
        claimed = o.claim is not None and not o.claim.expired(now)
        assert claimed or not b.require_claim, "up without a claim"
        assert d.desired <= cap
        if d.current == 0:
            assert d.desired == 1 and d.reason == Reason.FROM_ZERO
        else:
            assert d.desired - d.current <= b.step_up
            assert now - last_up >= b.step_interval_seconds, "steps up too often"
            assert o.ready_replicas >= o.replicas, "stepped up before the last step was ready"
    # To zero only after idling for idle_after (a cap of 0 is the one exception).
    if d.desired == 0 and d.current > 0 and cap > 0:
        assert idle_from is not None and now - idle_from >= b.idle_after_seconds
    if d.desired < d.current:
        assert d.reason in (
            Reason.STEP_DOWN,
            Reason.IDLE_STEP_DOWN,
            Reason.IDLE_TO_ZERO,
            Reason.GUARD_SHED,
            Reason.ABOVE_CAP,
        )


@st.composite
def single(draw: st.DrawFn) -> tuple[Config, BatchObservation, PolicyState]:
    b = draw(batch_configs(0))
    cfg = Config(batches=(b,), autoscaler=AutoscalerConfig(global_max_replicas=20))
    r = draw(st.integers(0, 12))
    o = BatchObservation(
        queue="batch0",
        waiting=draw(st.integers(0, 5000)),
        in_flight=draw(st.integers(0, 100)),
        oldest_age_seconds=0.0,
        replicas=r,
        ready_replicas=draw(st.integers(0, r)),
        claim=_claim(draw(CLAIMS), NOW),
        guards=tuple(draw(st.lists(GUARDS, max_size=2))),
    )
    opt_time = st.one_of(st.none(), st.floats(NOW - 600, NOW))
    bs = BatchState(
        last_up_at=draw(opt_time),
        last_down_at=draw(opt_time),
        last_desired=r,
        last_seen_replicas=r,
        idle_since=draw(opt_time),
        slack_since=draw(opt_time),
        prev_work=draw(st.one_of(st.none(), st.integers(0, 6000))),
        prev_waiting=draw(st.one_of(st.none(), st.integers(0, 6000))),
        prev_at=draw(st.one_of(st.none(), st.floats(NOW - 60, NOW - 1))),
        rate_per_replica=draw(st.one_of(st.none(), st.floats(-5, 5))),
    )
    return cfg, o, PolicyState({"batch0": bs})


def _desired(cfg: Config, o: BatchObservation, state: PolicyState) -> int:
    (d,), _ = decide([o], state, policy_config(cfg), NOW)
    return d.desired


@given(single(), st.integers(0, 5000))
@settings(max_examples=examples(400), deadline=None)
def test_more_waiting_never_means_fewer_replicas(
    case: tuple[Config, BatchObservation, PolicyState], extra: int
) -> None:
    cfg, o, state = case
    more = replace(o, waiting=o.waiting + extra)
    assert _desired(cfg, more, state) >= _desired(cfg, o, state)


@given(single(), GUARDS)
@settings(max_examples=examples(400), deadline=None)
def test_a_failing_guard_never_means_more_replicas(
    case: tuple[Config, BatchObservation, PolicyState], guard: GuardResult
) -> None:
    cfg, o, state = case
    healthy = replace(o, guards=tuple(g for g in o.guards if g.status == GuardStatus.HEALTHY))
    worse = replace(healthy, guards=(*healthy.guards, guard))
    assert _desired(cfg, worse, state) <= _desired(cfg, healthy, state)


@given(single())
@settings(max_examples=examples(300), deadline=None)
def test_a_held_claim_never_means_fewer_replicas(
    case: tuple[Config, BatchObservation, PolicyState],
) -> None:
    cfg, o, state = case
    held = replace(o, claim=held_by("a", NOW + 600))
    for other in (None, held_by("a", NOW - 1)):
        assert _desired(cfg, held, state) >= _desired(cfg, replace(o, claim=other), state)


@given(single(), st.integers(1, 10))
@settings(max_examples=examples(300), deadline=None)
def test_a_larger_cap_never_means_fewer_replicas(
    case: tuple[Config, BatchObservation, PolicyState], more: int
) -> None:
    cfg, o, state = case
    b = cfg.batches[0]
    bigger_cap = min(20, b.max_replicas + more)
    bigger = cfg.model_copy(
        update={
            "batches": (
                b.model_copy(update={"max_replicas": bigger_cap, "allow_big": bigger_cap > 10}),
            )
        }
    )
    assert _desired(bigger, o, state) >= _desired(cfg, o, state)
