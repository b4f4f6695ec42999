"""Rows in which from_zero decides: work waiting at 0 replicas."""

from __future__ import annotations

import math
from dataclasses import replace

from autoscaler.policy import Action, Reason
from tests.support.policy import (
    DRAINING,
    EXPIRED,
    HEALTHY,
    NOW,
    UNHEALTHY,
    UNKNOWN,
    Row,
    held_by,
    obs,
)

ROWS = [
    # --- 4. from_zero
    Row(
        "from_zero on first waiting work",
        "from_zero",
        obs(waiting=10),
        (1, Reason.FROM_ZERO, Action.UP),
    ),
    Row(
        "unclaimed work is reported, not scaled",
        "from_zero",
        obs(waiting=10, claim=None),
        (0, Reason.UNCLAIMED, Action.HOLD),
    ),
    Row(
        "expired claim does not start a batch",
        "from_zero",
        obs(waiting=10, claim=EXPIRED),
        (0, Reason.CLAIM_EXPIRED, Action.HOLD),
    ),
    Row(
        "draining at zero with work left: one replica to finish it",
        "from_zero",
        obs(waiting=10, claim=DRAINING),
        (1, Reason.FROM_ZERO, Action.UP),
    ),
    Row(
        "draining past the claim's expiry still finishes",
        "from_zero",
        obs(waiting=10, claim=replace(DRAINING, expires=NOW - 1)),
        (1, Reason.FROM_ZERO, Action.UP),
    ),
    Row(
        "draining at zero waits for the guards",
        "from_zero",
        obs(waiting=10, claim=DRAINING, guards=(UNHEALTHY,)),
        (0, Reason.GUARD_HOLD, Action.HOLD),
    ),
    Row(
        "require_claim false scales without a claim",
        "from_zero",
        obs(waiting=10, claim=None),
        (1, Reason.FROM_ZERO, Action.UP),
        cfg={"require_claim": False},
    ),
    Row(
        "claim without expiry counts as held",
        "from_zero",
        obs(waiting=10, claim=held_by("bob", math.inf)),
        (1, Reason.FROM_ZERO, Action.UP),
    ),
    Row(
        "unhealthy guard keeps a batch at zero",
        "from_zero",
        obs(waiting=10, guards=(HEALTHY, UNHEALTHY)),
        (0, Reason.GUARD_HOLD, Action.HOLD),
    ),
    Row(
        "unknown guard counts as unhealthy",
        "from_zero",
        obs(waiting=10, guards=(UNKNOWN,)),
        (0, Reason.GUARD_HOLD, Action.HOLD),
    ),
    Row(
        "cap 0 disables a batch",
        "from_zero",
        obs(waiting=10),
        (0, Reason.AT_CAP, Action.HOLD),
        cfg={"max_replicas": 0},
    ),
]
