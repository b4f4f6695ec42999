"""Rows in which manual_override decides: someone else changed the replicas, or the claim's
holder set them with `batchctl scale`."""

from __future__ import annotations

from autoscaler.policy import Action, BatchState, Reason
from tests.support.policy import NOW, Row, obs, ours, scaled

ROWS = [
    # --- 2. manual_override
    Row(
        "manual change is respected",
        "manual_override",
        obs(waiting=5000, replicas=7),
        (7, Reason.MANUAL_OVERRIDE, Action.NONE),
        state=ours(2, rate_per_replica=1.0),
    ),
    Row(
        "manual scale to zero is respected",
        "manual_override",
        obs(waiting=5000, replicas=0),
        (0, Reason.MANUAL_OVERRIDE, Action.NONE),
        state=ours(3),
    ),
    Row(
        "manual override still running",
        "manual_override",
        obs(replicas=7),
        (7, Reason.MANUAL_OVERRIDE, Action.NONE),
        state=ours(7, override_until=NOW + 1),
    ),
    Row(
        "a change we did not ask for is an override",
        "manual_override",
        obs(waiting=5000, replicas=2),
        (2, Reason.MANUAL_OVERRIDE, Action.NONE),
        state=BatchState(last_desired=3, last_seen_replicas=2, rate_per_replica=1.0),
    ),
    Row(
        "the holder's scale: that count for as long as it says",
        "manual_override",
        obs(waiting=5000, replicas=4, claim=scaled(4)),
        (4, Reason.MANUAL_OVERRIDE, Action.NONE),
        state=ours(2, rate_per_replica=1.0),
    ),
    Row(
        "the holder's scale, applied by us (local workers are ours)",
        "manual_override",
        obs(replicas=1, claim=scaled(3)),
        (3, Reason.MANUAL_OVERRIDE, Action.UP),
        state=ours(1),
    ),
    Row(
        "the holder's scale to zero holds with work waiting",
        "manual_override",
        obs(waiting=50, replicas=2, claim=scaled(0)),
        (0, Reason.MANUAL_OVERRIDE, Action.DOWN),
        state=ours(2),
    ),
    Row(
        "the holder's scale, within a cap lowered since",
        "manual_override",
        obs(replicas=1, claim=scaled(9)),
        (5, Reason.MANUAL_OVERRIDE, Action.UP),
        state=ours(1),
        cfg={"max_replicas": 5},
    ),
    Row(
        "someone else changes it during the holder's scale: hands off",
        "manual_override",
        obs(replicas=6, claim=scaled(4)),
        (6, Reason.MANUAL_OVERRIDE, Action.NONE),
        state=ours(4),
    ),
]
