"""Rows in which above_cap decides: more replicas than the batch's cap."""

from __future__ import annotations

from autoscaler.policy import Action, Reason
from tests.support.policy import NOW, Row, obs, ours, scaled

ROWS = [
    # --- 3. above_cap
    Row(
        "the holder's scale ended: back to the rules",
        "above_cap",
        obs(replicas=4, claim=scaled(4, until=NOW)),
        (3, Reason.ABOVE_CAP, Action.DOWN),
        state=ours(4),
        cfg={"max_replicas": 3},
    ),
    Row(
        "the holder's scale ends with the claim",
        "above_cap",
        obs(replicas=4, claim=scaled(4, expires=NOW)),
        (3, Reason.ABOVE_CAP, Action.DOWN),
        state=ours(4),
        cfg={"max_replicas": 3},
    ),
    Row(
        "manual override over: back to the rules",
        "above_cap",
        obs(waiting=5000, replicas=7),
        (6, Reason.ABOVE_CAP, Action.DOWN),
        state=ours(7, override_until=NOW),
    ),
    Row(
        "above cap: one down",
        "above_cap",
        obs(waiting=5000, replicas=8),
        (7, Reason.ABOVE_CAP, Action.DOWN),
        state=ours(8),
    ),
    Row(
        "above cap: one down per step interval",
        "above_cap",
        obs(waiting=5000, replicas=7),
        (7, Reason.ABOVE_CAP, Action.HOLD),
        state=ours(7, last_down_at=NOW - 59),
    ),
    Row(
        "above cap, floor first",
        "above_cap",
        obs(waiting=5000, in_flight=128, replicas=8),
        (8, Reason.INFLIGHT_FLOOR, Action.HOLD),
        state=ours(8),
    ),
]
