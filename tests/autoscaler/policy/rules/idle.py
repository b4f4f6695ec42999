"""Nothing waiting: idle_to_zero, idle_step_down and idle decide."""

from __future__ import annotations

from autoscaler.policy import Action, Reason
from tests.support.policy import EXPIRED, NOW, SHED, Row, obs, ours

ROWS = [
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
    Row(
        "a shedding guard does not slow an idle batch's drop: to zero, not one down",
        "idle_to_zero",
        obs(replicas=2, guards=(SHED,)),
        (0, Reason.IDLE_TO_ZERO, Action.DOWN),
        state=ours(2, idle_since=NOW - 120),
    ),
    Row(
        "above the cap and idle long enough: to zero, not one down",
        "idle_to_zero",
        obs(replicas=4),
        (0, Reason.IDLE_TO_ZERO, Action.DOWN),
        state=ours(4, idle_since=NOW - 120),
        cfg={"max_replicas": 2},
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
]
