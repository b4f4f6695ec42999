"""Rows in which steady decides: nothing to change."""

from __future__ import annotations

from autoscaler.policy import Action, Reason
from tests.support.policy import NOW, Row, obs, ours

ROWS = [
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
