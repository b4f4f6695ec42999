"""Rows in which drained decides: a draining claim with nothing left."""

from __future__ import annotations

from autoscaler.policy import Action, Reason
from tests.support.policy import DRAINING, NOW, Row, obs, ours

ROWS = [
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
]
