"""Rows in which no_data decides: the broker or the snapshot cannot be trusted; and
replicas_unknown: the snapshot is fine, the replica count is not known."""

from __future__ import annotations

from autoscaler.policy import Action, Reason
from tests.support.policy import Row, obs, ours

ROWS = [
    # --- 1. no_data
    Row(
        "no data: change nothing",
        "no_data",
        obs(waiting=5000, replicas=2, data_ok=False),
        (2, Reason.NO_DATA, Action.NONE),
        state=ours(2, rate_per_replica=1.0),
    ),
    Row(
        "no data even at zero with work",
        "no_data",
        obs(waiting=5000, data_ok=False),
        (0, Reason.NO_DATA, Action.NONE),
    ),
    Row(
        "no data says why",
        "no_data",
        obs(waiting=5000, replicas=2, data_ok=False, why="exporter unreachable"),
        (2, Reason.NO_DATA, Action.NONE),
        state=ours(2),
    ),
    # --- replicas_unknown: the snapshot is fine, the replica count is not known
    Row(
        "Deployment missing: hold, not no_data",
        "replicas_unknown",
        obs(waiting=5000, replicas=0, replicas_known=False, why="Deployment x not found"),
        (0, Reason.REPLICAS_UNKNOWN, Action.NONE),
        state=ours(2, rate_per_replica=1.0),
    ),
]
