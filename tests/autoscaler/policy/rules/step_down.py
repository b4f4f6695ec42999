"""Rows in which step_down decides: nothing waiting, the in-flight tail needs fewer."""

from __future__ import annotations

from autoscaler.policy import Action, Reason
from tests.support.policy import NOW, Row, obs, ours

ROWS = [
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
]
