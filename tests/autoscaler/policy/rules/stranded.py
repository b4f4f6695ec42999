"""Rows in which stranded decides: in-flight messages past the visibility timeout at 0
replicas, which only a running worker restores."""

from __future__ import annotations

from autoscaler.policy import Action, Reason
from tests.support.policy import DRAINING, UNHEALTHY, Row, obs

ROWS = [
    # --- 4. stranded
    Row(
        "200 stranded at zero, claimed: one replica restores them",
        "stranded",
        obs(in_flight=200, stranded=200),
        (1, Reason.STRANDED, Action.UP),
    ),
    Row(
        "stranded but unclaimed: reported, not scaled",
        "stranded",
        obs(in_flight=200, stranded=200, claim=None),
        (0, Reason.UNCLAIMED, Action.HOLD),
    ),
    Row(
        "stranded while draining: the drain finishes its work",
        "stranded",
        obs(in_flight=7, stranded=7, claim=DRAINING),
        (1, Reason.STRANDED, Action.UP),
    ),
    Row(
        "stranded waits for the guards",
        "stranded",
        obs(in_flight=7, stranded=7, guards=(UNHEALTHY,)),
        (0, Reason.GUARD_HOLD, Action.HOLD),
    ),
]
