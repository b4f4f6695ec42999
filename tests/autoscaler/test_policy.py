"""The scaling policy as a pure function: named table tests, then hypothesis properties."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autoscaler.policy import (
    PRECEDENCE,
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
from autoscaler.policy.steps import Tick
from autoscaler.policy.tracking import advance
from autoscaler.policyconfig import batch_policy, policy_config
from batchctl.claims import Claim, Override
from batchctl.config import AutoscalerConfig, BatchConfig, Config
from batchctl.reasons import MEANING


def held_by(holder: str, expires: float) -> Claim:
    return Claim("batch0", holder, "", "", 0.0, expires)


NOW = 10_000.0
HELD = held_by("alice", NOW + 3600)
EXPIRED = held_by("alice", NOW - 1)
HEALTHY = GuardResult("db", GuardStatus.HEALTHY)
UNHEALTHY = GuardResult("db", GuardStatus.UNHEALTHY)
UNKNOWN = GuardResult("db", GuardStatus.UNKNOWN)
DRAINING = replace(HELD, draining_since=NOW - 60)
SHED = GuardResult("es", GuardStatus.UNHEALTHY, shed=True)
UNKNOWN_SHED = GuardResult("es", GuardStatus.UNKNOWN, shed=True)


def scaled(n: int, until: float = NOW + 600, expires: float = NOW + 3600) -> Claim:
    """A claim whose holder set `n` replicas with `batchctl scale` until `until`."""
    return replace(HELD, expires=expires, override=Override(n, until, "alice", "catch up", NOW))


def config(budget: int = 20, batches: int = 1, **batch: Any) -> Config:
    return Config(
        batches=tuple(
            BatchConfig(queue=f"batch{i}", deployment=f"celery-batch{i}", **batch)
            for i in range(batches)
        ),
        autoscaler=AutoscalerConfig(global_max_replicas=budget),
    )


def obs(**kw: Any) -> BatchObservation:
    base: dict[str, Any] = dict(
        queue="batch0",
        waiting=0,
        in_flight=0,
        oldest_age_seconds=0.0,
        replicas=0,
        ready_replicas=None,
        claim=HELD,
        guards=(HEALTHY,),
        data_ok=True,
    )
    base.update(kw)
    if base["ready_replicas"] is None:
        base["ready_replicas"] = base["replicas"]
    return BatchObservation(**base)


# A batch we have been scaling: the replicas are what we last asked for.
def ours(replicas: int, **kw: Any) -> BatchState:
    return BatchState(last_desired=replicas, last_seen_replicas=replicas, **kw)


@dataclass(frozen=True)
class Row:
    name: str
    step: str  # the rule of autoscaler.policy.PRECEDENCE that decides
    obs: BatchObservation
    want: tuple[int, Reason, Action]
    state: BatchState = field(default_factory=BatchState)
    cfg: dict[str, Any] = field(default_factory=dict)


# One section per precedence step, in the order of autoscaler.policy's docstring.
ROWS = [
    # --- 1. no_data
    Row(
        "no data: change nothing",
        "no_data",
        obs(waiting=5000, replicas=2, data_ok=False),
        (2, Reason.NO_DATA, Action.NONE),
        state=ours(2, rate_per_replica=1.0),
    ),
    Row(
        "no data even at zero with work",
        "no_data",
        obs(waiting=5000, data_ok=False),
        (0, Reason.NO_DATA, Action.NONE),
    ),
    Row(
        "no data says why",
        "no_data",
        obs(waiting=5000, replicas=2, data_ok=False, why="exporter unreachable"),
        (2, Reason.NO_DATA, Action.NONE),
        state=ours(2),
    ),
    # --- replicas_unknown: the snapshot is fine, the replica count is not known
    Row(
        "Deployment missing: hold, not no_data",
        "replicas_unknown",
        obs(waiting=5000, replicas=0, replicas_known=False, why="Deployment x not found"),
        (0, Reason.REPLICAS_UNKNOWN, Action.NONE),
        state=ours(2, rate_per_replica=1.0),
    ),
    # --- 2. manual_override
    Row(
        "manual change is respected",
        "manual_override",
        obs(waiting=5000, replicas=7),
        (7, Reason.MANUAL_OVERRIDE, Action.NONE),
        state=ours(2, rate_per_replica=1.0),
    ),
    Row(
        "manual scale to zero is respected",
        "manual_override",
        obs(waiting=5000, replicas=0),
        (0, Reason.MANUAL_OVERRIDE, Action.NONE),
        state=ours(3),
    ),
    Row(
        "manual override still running",
        "manual_override",
        obs(replicas=7),
        (7, Reason.MANUAL_OVERRIDE, Action.NONE),
        state=ours(7, override_until=NOW + 1),
    ),
    Row(
        "a change we did not ask for is an override",
        "manual_override",
        obs(waiting=5000, replicas=2),
        (2, Reason.MANUAL_OVERRIDE, Action.NONE),
        state=BatchState(last_desired=3, last_seen_replicas=2, rate_per_replica=1.0),
    ),
    Row(
        "the holder's scale: that count for as long as it says",
        "manual_override",
        obs(waiting=5000, replicas=4, claim=scaled(4)),
        (4, Reason.MANUAL_OVERRIDE, Action.NONE),
        state=ours(2, rate_per_replica=1.0),
    ),
    Row(
        "the holder's scale, applied by us (local workers are ours)",
        "manual_override",
        obs(replicas=1, claim=scaled(3)),
        (3, Reason.MANUAL_OVERRIDE, Action.UP),
        state=ours(1),
    ),
    Row(
        "the holder's scale to zero holds with work waiting",
        "manual_override",
        obs(waiting=50, replicas=2, claim=scaled(0)),
        (0, Reason.MANUAL_OVERRIDE, Action.DOWN),
        state=ours(2),
    ),
    Row(
        "the holder's scale, within a cap lowered since",
        "manual_override",
        obs(replicas=1, claim=scaled(9)),
        (5, Reason.MANUAL_OVERRIDE, Action.UP),
        state=ours(1),
        cfg={"max_replicas": 5},
    ),
    Row(
        "someone else changes it during the holder's scale: hands off",
        "manual_override",
        obs(replicas=6, claim=scaled(4)),
        (6, Reason.MANUAL_OVERRIDE, Action.NONE),
        state=ours(4),
    ),
    # --- 3. above_cap
    Row(
        "the holder's scale ended: back to the rules",
        "above_cap",
        obs(replicas=4, claim=scaled(4, until=NOW)),
        (3, Reason.ABOVE_CAP, Action.DOWN),
        state=ours(4),
        cfg={"max_replicas": 3},
    ),
    Row(
        "the holder's scale ends with the claim",
        "above_cap",
        obs(replicas=4, claim=scaled(4, expires=NOW)),
        (3, Reason.ABOVE_CAP, Action.DOWN),
        state=ours(4),
        cfg={"max_replicas": 3},
    ),
    Row(
        "manual override over: back to the rules",
        "above_cap",
        obs(waiting=5000, replicas=7),
        (6, Reason.ABOVE_CAP, Action.DOWN),
        state=ours(7, override_until=NOW),
    ),
    Row(
        "above cap: one down",
        "above_cap",
        obs(waiting=5000, replicas=8),
        (7, Reason.ABOVE_CAP, Action.DOWN),
        state=ours(8),
    ),
    Row(
        "above cap: one down per step interval",
        "above_cap",
        obs(waiting=5000, replicas=7),
        (7, Reason.ABOVE_CAP, Action.HOLD),
        state=ours(7, last_down_at=NOW - 59),
    ),
    Row(
        "above cap, floor first",
        "above_cap",
        obs(waiting=5000, in_flight=128, replicas=8),
        (8, Reason.INFLIGHT_FLOOR, Action.HOLD),
        state=ours(8),
    ),
    # --- 4. from_zero
    Row(
        "from_zero on first waiting work",
        "from_zero",
        obs(waiting=10),
        (1, Reason.FROM_ZERO, Action.UP),
    ),
    Row(
        "unclaimed work is reported, not scaled",
        "from_zero",
        obs(waiting=10, claim=None),
        (0, Reason.UNCLAIMED, Action.HOLD),
    ),
    Row(
        "expired claim does not start a batch",
        "from_zero",
        obs(waiting=10, claim=EXPIRED),
        (0, Reason.CLAIM_EXPIRED, Action.HOLD),
    ),
    Row(
        "draining at zero with work left: one replica to finish it",
        "from_zero",
        obs(waiting=10, claim=DRAINING),
        (1, Reason.FROM_ZERO, Action.UP),
    ),
    Row(
        "draining past the claim's expiry still finishes",
        "from_zero",
        obs(waiting=10, claim=replace(DRAINING, expires=NOW - 1)),
        (1, Reason.FROM_ZERO, Action.UP),
    ),
    Row(
        "draining at zero waits for the guards",
        "from_zero",
        obs(waiting=10, claim=DRAINING, guards=(UNHEALTHY,)),
        (0, Reason.GUARD_HOLD, Action.HOLD),
    ),
    Row(
        "require_claim false scales without a claim",
        "from_zero",
        obs(waiting=10, claim=None),
        (1, Reason.FROM_ZERO, Action.UP),
        cfg={"require_claim": False},
    ),
    Row(
        "claim without expiry counts as held",
        "from_zero",
        obs(waiting=10, claim=held_by("bob", math.inf)),
        (1, Reason.FROM_ZERO, Action.UP),
    ),
    Row(
        "unhealthy guard keeps a batch at zero",
        "from_zero",
        obs(waiting=10, guards=(HEALTHY, UNHEALTHY)),
        (0, Reason.GUARD_HOLD, Action.HOLD),
    ),
    Row(
        "unknown guard counts as unhealthy",
        "from_zero",
        obs(waiting=10, guards=(UNKNOWN,)),
        (0, Reason.GUARD_HOLD, Action.HOLD),
    ),
    Row(
        "cap 0 disables a batch",
        "from_zero",
        obs(waiting=10),
        (0, Reason.AT_CAP, Action.HOLD),
        cfg={"max_replicas": 0},
    ),
    # --- 5. guard_shed
    Row(
        "shed one replica",
        "guard_shed",
        obs(waiting=100, replicas=3, guards=(SHED,)),
        (2, Reason.GUARD_SHED, Action.DOWN),
        state=ours(3),
    ),
    Row(
        "shed waits a step interval",
        "guard_shed",
        obs(waiting=100, replicas=3, guards=(SHED,)),
        (3, Reason.GUARD_SHED, Action.HOLD),
        state=ours(3, last_down_at=NOW - 30),
    ),
    Row(
        "shed never below the in-flight floor",
        "guard_shed",
        obs(waiting=100, in_flight=32, replicas=2, guards=(SHED,)),
        (2, Reason.INFLIGHT_FLOOR, Action.HOLD),
        state=ours(2),
    ),
    Row(
        "shedding stops at one, the guard still holds growth",
        "backlog",
        obs(waiting=100, replicas=1, guards=(SHED,)),
        (1, Reason.GUARD_HOLD, Action.HOLD),
        state=ours(1),
    ),
    Row(
        "shedding stops at min_replicas",
        "backlog",
        obs(waiting=100, replicas=2, guards=(SHED,)),
        (2, Reason.GUARD_HOLD, Action.HOLD),
        state=ours(2),
        cfg={"min_replicas": 2},
    ),
    Row(
        "a shedding guard does not keep an idle batch at one",
        "idle_to_zero",
        obs(replicas=1, guards=(SHED,)),
        (0, Reason.IDLE_TO_ZERO, Action.DOWN),
        state=ours(1, idle_since=NOW - 120),
    ),
    Row(
        "an unknown guard holds but does not shed",
        "backlog",
        obs(waiting=5000, replicas=3, guards=(UNKNOWN_SHED,)),
        (3, Reason.GUARD_HOLD, Action.HOLD),
        state=ours(3, rate_per_replica=1.0),
    ),
    # --- 6. backlog
    Row(
        "draining: no growth",
        "backlog",
        obs(waiting=5000, replicas=2, claim=DRAINING),
        (2, Reason.DRAINING, Action.HOLD),
        state=ours(2, rate_per_replica=1.0),
    ),
    Row(
        "draining, done within the target: steady",
        "backlog",
        obs(waiting=10, replicas=2, claim=DRAINING),
        (2, Reason.STEADY, Action.NONE),
        state=ours(2, rate_per_replica=10.0),
    ),
    Row(
        "the last step's pods still starting: wait for them",
        "backlog",
        obs(waiting=5000, replicas=3, ready_replicas=2),
        (3, Reason.REPLICAS_STARTING, Action.HOLD),
        state=ours(3, rate_per_replica=1.0, last_up_at=NOW - 600, not_ready_since=NOW - 299),
    ),
    Row(
        "pods that never become ready are not multiplied",
        "backlog",
        obs(waiting=5000, replicas=1, ready_replicas=0),
        (1, Reason.REPLICAS_NOT_READY, Action.HOLD),
        state=ours(1, rate_per_replica=1.0, last_up_at=NOW - 900, not_ready_since=NOW - 300),
    ),
    Row(
        "ready caught up: the next step",
        "backlog",
        obs(waiting=5000, replicas=3, ready_replicas=3),
        (4, Reason.BACKLOG, Action.UP),
        state=ours(3, rate_per_replica=1.0, last_up_at=NOW - 600, not_ready_since=NOW - 299),
    ),
    Row(
        "backlog slower than target: one step up",
        "backlog",
        obs(waiting=5000, replicas=2),
        (3, Reason.BACKLOG, Action.UP),
        state=ours(2, rate_per_replica=1.0, last_up_at=NOW - 60),
    ),
    Row(
        "step_up 2 takes two at once",
        "backlog",
        obs(waiting=5000, replicas=2),
        (4, Reason.BACKLOG, Action.UP),
        state=ours(2, rate_per_replica=1.0, last_up_at=NOW - 60),
        cfg={"step_up": 2},
    ),
    Row(
        "a step is never more than the target needs",
        "backlog",
        obs(waiting=700, replicas=1),
        (2, Reason.BACKLOG, Action.UP),
        state=ours(1, rate_per_replica=1.0, last_up_at=NOW - 60),
        cfg={"step_up": 5},
    ),
    Row(
        "last step too recent",
        "backlog",
        obs(waiting=5000, replicas=2),
        (2, Reason.STEP_LIMIT, Action.HOLD),
        state=ours(2, rate_per_replica=1.0, last_up_at=NOW - 59),
    ),
    Row(
        "backlog drains within target: steady",
        "backlog",
        obs(waiting=5000, replicas=2),
        (2, Reason.STEADY, Action.NONE),
        state=ours(2, rate_per_replica=10.0),
    ),
    Row(
        "unknown throughput: step up",
        "backlog",
        obs(waiting=50, replicas=1),
        (2, Reason.BACKLOG, Action.UP),
        state=ours(1),
    ),
    Row(
        "growing backlog (negative throughput): step up",
        "backlog",
        obs(waiting=50, replicas=1),
        (2, Reason.BACKLOG, Action.UP),
        state=ours(1, rate_per_replica=-0.5),
    ),
    Row(
        "at cap",
        "backlog",
        obs(waiting=5000, replicas=5),
        (5, Reason.AT_CAP, Action.HOLD),
        state=ours(5, rate_per_replica=1.0),
    ),
    Row(
        "a step that reaches the cap is a backlog step",
        "backlog",
        obs(waiting=5000, replicas=4),
        (5, Reason.BACKLOG, Action.UP),
        state=ours(4, rate_per_replica=1.0),
        cfg={"step_up": 3},
    ),
    Row(
        "guard holds a backlog",
        "backlog",
        obs(waiting=5000, replicas=2, guards=(UNHEALTHY,)),
        (2, Reason.GUARD_HOLD, Action.HOLD),
        state=ours(2, rate_per_replica=1.0),
    ),
    Row(
        "unclaimed backlog: no steps up",
        "backlog",
        obs(waiting=5000, replicas=2, claim=None),
        (2, Reason.UNCLAIMED, Action.HOLD),
        state=ours(2, rate_per_replica=1.0),
    ),
    Row(
        "expired claim: no more steps up",
        "backlog",
        obs(waiting=5000, replicas=2, claim=EXPIRED),
        (2, Reason.CLAIM_EXPIRED, Action.HOLD),
        state=ours(2, rate_per_replica=1.0),
    ),
    Row(
        "unclaimed backlog that drains within target: steady",
        "backlog",
        obs(waiting=5000, replicas=2, claim=None),
        (2, Reason.STEADY, Action.NONE),
        state=ours(2, rate_per_replica=10.0),
    ),
    # --- 7. nothing waiting: drained
    Row(
        "drain done: straight to zero, no idle wait",
        "drained",
        obs(replicas=3, claim=DRAINING),
        (0, Reason.DRAINED, Action.DOWN),
        state=ours(3, idle_since=NOW - 15, last_down_at=NOW - 15),
    ),
    Row(
        "drain done: to min_replicas",
        "drained",
        obs(replicas=3, claim=DRAINING),
        (1, Reason.DRAINED, Action.DOWN),
        state=ours(3, idle_since=NOW - 15),
        cfg={"min_replicas": 1},
    ),
    Row(
        "draining, first idle tick: one more tick to be sure",
        "idle",
        obs(replicas=3, claim=DRAINING),
        (3, Reason.IDLE, Action.NONE),
        state=ours(3),
    ),
    Row(
        "draining with a tail in flight: the tail rule decides",
        "step_down",
        obs(in_flight=20, replicas=4, claim=DRAINING),
        (3, Reason.STEP_DOWN, Action.DOWN),
        state=ours(4, slack_since=NOW - 60, rate_per_replica=2.0),
    ),
    # --- 7. nothing waiting: idle_to_zero
    Row(
        "idle long enough: to zero",
        "idle_to_zero",
        obs(replicas=1),
        (0, Reason.IDLE_TO_ZERO, Action.DOWN),
        state=ours(1, idle_since=NOW - 120),
    ),
    Row(
        "idle straight from several replicas to zero",
        "idle_to_zero",
        obs(replicas=4),
        (0, Reason.IDLE_TO_ZERO, Action.DOWN),
        state=ours(4, idle_since=NOW - 300, last_down_at=NOW - 15),
    ),
    Row(
        "min_replicas instead of zero",
        "idle_to_zero",
        obs(replicas=2),
        (1, Reason.IDLE_TO_ZERO, Action.DOWN),
        state=ours(2, idle_since=NOW - 300),
        cfg={"min_replicas": 1},
    ),
    Row(
        "expired claim, drained: to zero like any idle batch",
        "idle_to_zero",
        obs(replicas=2, claim=EXPIRED),
        (0, Reason.IDLE_TO_ZERO, Action.DOWN),
        state=ours(2, idle_since=NOW - 120),
    ),
    # --- 7. nothing waiting: idle_step_down
    Row(
        "idle on two ticks: one down",
        "idle_step_down",
        obs(replicas=4),
        (3, Reason.IDLE_STEP_DOWN, Action.DOWN),
        state=ours(4, idle_since=NOW - 15),
    ),
    Row(
        "idle step-down: one per step interval",
        "idle_step_down",
        obs(replicas=3),
        (3, Reason.IDLE_STEP_DOWN, Action.HOLD),
        state=ours(3, idle_since=NOW - 30, last_down_at=NOW - 15),
    ),
    Row(
        "idle step-down: an interval after a step up too",
        "idle_step_down",
        obs(replicas=3),
        (3, Reason.IDLE_STEP_DOWN, Action.HOLD),
        state=ours(3, idle_since=NOW - 30, last_up_at=NOW - 59),
    ),
    Row(
        "idle step-down: the next step an interval later",
        "idle_step_down",
        obs(replicas=3),
        (2, Reason.IDLE_STEP_DOWN, Action.DOWN),
        state=ours(3, idle_since=NOW - 75, last_down_at=NOW - 60),
    ),
    # --- 7. nothing waiting: step_down (the in-flight tail)
    Row(
        "small tail in flight: step down",
        "step_down",
        obs(in_flight=20, replicas=4),
        (3, Reason.STEP_DOWN, Action.DOWN),
        state=ours(4, slack_since=NOW - 60, rate_per_replica=2.0),
    ),
    Row(
        "no step down within an interval of the last change",
        "step_down",
        obs(in_flight=20, replicas=4),
        (4, Reason.STEP_DOWN, Action.HOLD),
        state=ours(4, slack_since=NOW - 600, rate_per_replica=2.0, last_up_at=NOW - 30),
    ),
    Row(
        "in-flight floor blocks a step down",
        "step_down",
        obs(in_flight=30, replicas=2),
        (2, Reason.INFLIGHT_FLOOR, Action.HOLD),
        state=ours(2, slack_since=NOW - 600, rate_per_replica=100.0),
    ),
    # --- 7. nothing waiting: idle
    Row(
        "idle, not long enough",
        "idle",
        obs(replicas=1),
        (1, Reason.IDLE, Action.NONE),
        state=ours(1, idle_since=NOW - 119),
    ),
    Row("first idle tick holds", "idle", obs(replicas=4), (4, Reason.IDLE, Action.NONE), ours(4)),
    Row(
        "the tail is done: the idle rules decide, not the tail rule",
        "idle",
        obs(replicas=4),
        (4, Reason.IDLE, Action.NONE),
        state=ours(4, slack_since=NOW - 600, rate_per_replica=2.0),
    ),
    Row(
        "idle step-down stops at one",
        "idle",
        obs(replicas=1),
        (1, Reason.IDLE, Action.NONE),
        state=ours(1, idle_since=NOW - 75, last_down_at=NOW - 60),
    ),
    Row(
        "expired claim, drained, not idle long enough: no sooner",
        "idle",
        obs(replicas=1, claim=EXPIRED),
        (1, Reason.IDLE, Action.NONE),
        state=ours(1, idle_since=NOW - 119),
    ),
    # --- 8. steady
    Row("nothing at zero", "steady", obs(), (0, Reason.STEADY, Action.NONE)),
    Row(
        "in flight only at zero: nothing to do",
        "steady",
        obs(in_flight=5),
        (0, Reason.STEADY, Action.NONE),
    ),
    Row(
        "at min_replicas: steady",
        "steady",
        obs(replicas=1),
        (1, Reason.STEADY, Action.NONE),
        state=ours(1, idle_since=NOW - 300),
        cfg={"min_replicas": 1},
    ),
    Row(
        "long tail in flight: keep the replicas working",
        "steady",
        obs(in_flight=50, replicas=4),
        (4, Reason.STEADY, Action.NONE),
        state=ours(4, slack_since=NOW - 600, rate_per_replica=0.1),
    ),
    Row(
        "no step down until nothing waited for an interval",
        "steady",
        obs(in_flight=20, replicas=4),
        (4, Reason.STEADY, Action.NONE),
        state=ours(4, slack_since=NOW - 59, rate_per_replica=2.0),
    ),
    Row(
        "unclaimed, in flight only: steady",
        "steady",
        obs(in_flight=50, replicas=2, claim=None),
        (2, Reason.STEADY, Action.NONE),
        state=ours(2, rate_per_replica=0.1),
    ),
]


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_table(row: Row) -> None:
    cfg = config(**row.cfg)
    decisions, _ = decide([row.obs], PolicyState({"batch0": row.state}), policy_config(cfg), NOW)
    (d,) = decisions
    assert (d.desired, d.reason, d.action) == row.want, d.detail
    assert d.current == row.obs.replicas
    assert d.action in (Action.UP, Action.DOWN) or d.desired == d.current
    # The row's rule is the one that decides: every rule before it passes.
    batch = batch_policy(cfg.batches[0])
    tick = Tick(row.obs, row.state, advance(row.obs, row.state, batch, NOW), batch, NOW)
    i = [s.__name__ for s in PRECEDENCE].index(row.step)
    assert [s.__name__ for s in PRECEDENCE[:i] if s(tick) is not None] == []
    assert PRECEDENCE[i](tick) == d


def test_every_rule_and_every_reason_has_a_row() -> None:
    """A rule or reason that no row reaches is dead code or an unused label: remove it, or
    add the row that shows when it happens."""
    assert {r.step for r in ROWS} == {s.__name__ for s in PRECEDENCE}
    reasons = {r.want[1] for r in ROWS} | {reason for r in BUDGET_ROWS for _, reason in r.want}
    # observe_only is the loop's, never the policy's (tests/autoscaler/test_loop.py), and
    # so are the holds for another controller (tests/autoscaler/test_other_controllers.py).
    loop_only = {Reason.OBSERVE_ONLY, Reason.OTHER_CONTROLLER, Reason.CONTROLLERS_UNKNOWN}
    assert set(Reason) - reasons == loop_only
    assert set(MEANING) == set(Reason)


# --- the shared budget ---------------------------------------------------------------


@dataclass(frozen=True)
class BudgetRow:
    name: str
    budget: int
    replicas: tuple[int, ...]
    waiting: tuple[int, ...]
    want: tuple[tuple[int, Reason], ...]
    step_up: int = 1


BUDGET_ROWS = [
    BudgetRow(
        "room for all",
        budget=20,
        replicas=(1, 1),
        waiting=(5000, 5000),
        want=((2, Reason.BACKLOG), (2, Reason.BACKLOG)),
    ),
    BudgetRow(
        "last replica goes to the first by name on a tie",
        budget=3,
        replicas=(1, 1),
        waiting=(5000, 5000),
        want=((2, Reason.BACKLOG), (1, Reason.BUDGET)),
    ),
    BudgetRow(
        "the smaller batch gets the room first",
        budget=6,
        replicas=(3, 1),
        waiting=(5000, 5000),
        want=((3, Reason.BUDGET), (3, Reason.BACKLOG)),
        step_up=2,
    ),
    BudgetRow(
        "budget full: from_zero waits",
        budget=4,
        replicas=(4, 0),
        waiting=(5000, 10),
        want=((4, Reason.BUDGET), (0, Reason.BUDGET)),
    ),
    BudgetRow(
        "a batch going down frees room this tick",
        budget=4,
        replicas=(4, 0),
        waiting=(0, 10),
        want=((3, Reason.IDLE_STEP_DOWN), (1, Reason.FROM_ZERO)),
    ),
    BudgetRow(
        "over budget: no ups, nobody forced down",
        budget=2,
        replicas=(3, 2),
        waiting=(5000, 5000),
        want=((3, Reason.BUDGET), (2, Reason.BUDGET)),
    ),
]


@pytest.mark.parametrize("row", BUDGET_ROWS, ids=[r.name for r in BUDGET_ROWS])
def test_budget(row: BudgetRow) -> None:
    n = len(row.replicas)
    cfg = config(budget=row.budget, batches=n, step_up=row.step_up)
    observations = [
        obs(queue=f"batch{i}", replicas=row.replicas[i], waiting=row.waiting[i]) for i in range(n)
    ]
    state = PolicyState(
        {
            f"batch{i}": ours(row.replicas[i], rate_per_replica=1.0, idle_since=NOW - 15)
            for i in range(n)
        }
    )
    decisions, _ = decide(observations, state, policy_config(cfg), NOW)
    assert tuple((d.desired, d.reason) for d in decisions) == row.want


# --- state between ticks ---------------------------------------------------------------


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


def test_caps_by_band() -> None:
    assert effective_cap(BatchConfig(queue="q", deployment="d", max_replicas=7)) == 7
    big = BatchConfig(queue="q", deployment="d", max_replicas=15, allow_big=True)
    assert effective_cap(big) == 15
    # Bypassing validation (model_construct) must not bypass the bands.
    sneaky = BatchConfig.model_construct(**{**big.model_dump(), "max_replicas": 50})
    assert effective_cap(sneaky) == 20


def test_inflight_floor_is_prefetch_window() -> None:
    b = BatchConfig(queue="q", deployment="d", worker_concurrency=4, prefetch_multiplier=4)
    assert [inflight_floor(b, n) for n in (0, 1, 16, 17, 33)] == [0, 1, 1, 2, 3]


# --- properties ------------------------------------------------------------------------

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
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
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
@settings(max_examples=400, deadline=None)
def test_more_waiting_never_means_fewer_replicas(
    case: tuple[Config, BatchObservation, PolicyState], extra: int
) -> None:
    cfg, o, state = case
    more = replace(o, waiting=o.waiting + extra)
    assert _desired(cfg, more, state) >= _desired(cfg, o, state)


@given(single(), GUARDS)
@settings(max_examples=400, deadline=None)
def test_a_failing_guard_never_means_more_replicas(
    case: tuple[Config, BatchObservation, PolicyState], guard: GuardResult
) -> None:
    cfg, o, state = case
    healthy = replace(o, guards=tuple(g for g in o.guards if g.status == GuardStatus.HEALTHY))
    worse = replace(healthy, guards=(*healthy.guards, guard))
    assert _desired(cfg, worse, state) <= _desired(cfg, healthy, state)


@given(single())
@settings(max_examples=300, deadline=None)
def test_a_held_claim_never_means_fewer_replicas(
    case: tuple[Config, BatchObservation, PolicyState],
) -> None:
    cfg, o, state = case
    held = replace(o, claim=held_by("a", NOW + 600))
    for other in (None, held_by("a", NOW - 1)):
        assert _desired(cfg, held, state) >= _desired(cfg, replace(o, claim=other), state)


@given(single(), st.integers(1, 10))
@settings(max_examples=300, deadline=None)
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
