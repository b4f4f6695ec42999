"""The policy's table: for every row, the rule it names decides, and every rule before it
passes (the rows are in tests/autoscaler/policy/rules/, one module per rule)."""

from __future__ import annotations

import pytest

from autoscaler.policy import PRECEDENCE, Action, PolicyState, Reason, decide
from autoscaler.policy.scalein import spare_busy
from autoscaler.policy.steps import Tick
from autoscaler.policy.tracking import advance
from autoscaler.policyconfig import batch_policy, policy_config
from batchctl.reasons import MEANING
from tests.autoscaler.policy.rules import (
    above_cap,
    backlog,
    busy,
    deadline,
    drained,
    from_zero,
    gaps,
    guard_shed,
    idle,
    idle_replicas,
    manual_override,
    no_data,
    scheduled,
    steady,
    step_down,
    stranded,
)
from tests.autoscaler.policy.rules.budget import BUDGET_ROWS
from tests.support.policy import NOW, Row, config

# One section per precedence step, in the order of autoscaler.policy's docstring.
ROWS = [
    *no_data.ROWS,
    *manual_override.ROWS,
    *above_cap.ROWS,
    *gaps.FROM_ZERO_ROWS,
    *from_zero.ROWS,
    *stranded.ROWS,
    *guard_shed.ROWS,
    *deadline.ROWS,
    *backlog.ROWS,
    *deadline.IDLE_ROWS,
    *drained.ROWS,
    *scheduled.ROWS,
    *idle.ROWS,
    *scheduled.OTHER_ROWS,
    *gaps.IDLE_GAP_ROWS,
    *idle_replicas.ROWS,
    *step_down.ROWS,
    *busy.ROWS,
    *steady.ROWS,
]


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_table(row: Row) -> None:
    cfg = config(**row.cfg)
    decisions, _ = decide([row.obs], PolicyState({"batch0": row.state}), policy_config(cfg), NOW)
    (d,) = decisions
    assert (d.desired, d.reason, d.action) == row.want, d.detail
    assert d.current == row.obs.replicas
    assert d.action in (Action.UP, Action.DOWN) or d.desired == d.current
    # The row's rule is the one that decides: every rule before it passes. (A step down
    # then stops no busy replica: autoscaler/policy/scalein.py.)
    batch = batch_policy(cfg.batches[0])
    tick = Tick(row.obs, row.state, advance(row.obs, row.state, batch, NOW), batch, NOW)
    i = [s.__name__ for s in PRECEDENCE].index(row.step)
    assert [s.__name__ for s in PRECEDENCE[:i] if s(tick) is not None] == []
    rule = PRECEDENCE[i](tick)
    assert rule is not None and spare_busy(tick, rule) == d


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
