"""Rows in which idle_replicas decides: nothing waiting, some replicas finishing their
tasks, others idle by the busy map."""

from __future__ import annotations

from autoscaler.policy import Action, Reason
from tests.support.policy import NOW, Row, obs, ours

ROWS = [
    # --- 7. nothing waiting: idle_replicas (the busy map's idle tail)
    Row(
        "idle replicas while others finish: they go together",
        "idle_replicas",
        obs(in_flight=10, active=4, replicas=5, idle_replicas=3),
        (2, Reason.IDLE_REPLICAS, Action.DOWN),
        state=ours(5, slack_since=NOW - 60),
    ),
    Row(
        "never below the in-flight floor",
        "idle_replicas",
        obs(in_flight=40, active=4, replicas=5, idle_replicas=3),
        (3, Reason.IDLE_REPLICAS, Action.DOWN),
        state=ours(5, slack_since=NOW - 60),
    ),
]
