"""The shared budget's rows: several batches, one global_max_replicas."""

from __future__ import annotations

from dataclasses import dataclass

from autoscaler.policy import Reason


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
