"""Rows in which backlog decides: work waiting, scale toward what clears it."""

from __future__ import annotations

from autoscaler.policy import Action, Reason
from tests.support.policy import DRAINING, EXPIRED, NOW, UNHEALTHY, Row, obs, ours

ROWS = [
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
]
