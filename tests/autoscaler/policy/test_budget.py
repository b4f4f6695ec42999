"""The shared budget: which batch gets the room when the replicas run short."""

from __future__ import annotations

import pytest

from autoscaler.policy import PolicyState, decide
from autoscaler.policyconfig import policy_config
from tests.autoscaler.policy.rules.budget import BUDGET_ROWS, BudgetRow
from tests.support.policy import NOW, config, obs, ours


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
