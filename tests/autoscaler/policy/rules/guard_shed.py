"""Rows in which guard_shed decides: a shedding guard is unhealthy."""

from __future__ import annotations

from autoscaler.policy import Action, Reason
from tests.support.policy import NOW, SHED, UNKNOWN_SHED, Row, obs, ours

ROWS = [
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
]
