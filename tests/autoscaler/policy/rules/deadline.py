"""Rows in which deadline decides: a claim with --finish-by, paced to finish in time with
the fewest replicas (autoscaler/policy/pacing.py plans it)."""

from __future__ import annotations

from dataclasses import replace

from autoscaler.policy import Action, Reason
from tests.support.policy import HELD, NOW, UNHEALTHY, Row, obs, ours


def by(seconds: float) -> object:
    """The claim, with a deadline `seconds` from NOW."""
    return replace(HELD, finish_by=NOW + seconds, expires=NOW + 86400)


ROWS = [
    # --- 6a. a deadline: the fewest replicas that finish in time
    Row(
        "the deadline needs more replicas: one step up",
        "deadline",
        obs(waiting=1000, replicas=1, claim=by(600)),
        (2, Reason.DEADLINE, Action.UP),
        state=ours(1, rate_per_replica=0.5),
    ),
    Row(
        "fewer replicas still finish in time: one down",
        "deadline",
        obs(waiting=100, replicas=4, claim=by(7200)),
        (3, Reason.DEADLINE_PACE, Action.DOWN),
        state=ours(4, rate_per_replica=1.0),
    ),
    Row(
        "one down per step interval",
        "deadline",
        obs(waiting=100, replicas=4, claim=by(7200)),
        (4, Reason.DEADLINE_PACE, Action.HOLD),
        state=ours(4, rate_per_replica=1.0, last_up_at=NOW - 30),
    ),
    Row(
        "on pace: nothing to change",
        "deadline",
        obs(waiting=1000, replicas=2, claim=by(1500)),
        (2, Reason.STEADY, Action.NONE),
        state=ours(2, rate_per_replica=0.5),
    ),
    Row(
        "the pace from task_seconds before one is measured",
        "deadline",
        obs(waiting=1000, replicas=1, claim=by(600)),
        (2, Reason.DEADLINE, Action.UP),
        state=ours(1),
        cfg={"task_seconds": 8.0},
    ),
    Row(
        "a deadline the cap cannot meet holds at the cap",
        "deadline",
        obs(waiting=100_000, replicas=5, claim=by(600)),
        (5, Reason.AT_CAP, Action.HOLD),
        state=ours(5, rate_per_replica=0.5),
    ),
    Row(
        "a guard holds the growth a deadline needs",
        "deadline",
        obs(waiting=1000, replicas=1, claim=by(600), guards=(UNHEALTHY,)),
        (1, Reason.GUARD_HOLD, Action.HOLD),
        state=ours(1, rate_per_replica=0.5),
    ),
]

IDLE_ROWS = [
    # --- 7a. nothing at all to do, with a deadline: deadline_idle
    Row(
        "idle with a deadline: to min_replicas at once",
        "deadline_idle",
        obs(replicas=3, claim=by(7200)),
        (0, Reason.DEADLINE_PACE, Action.DOWN),
        state=ours(3, idle_since=NOW - 15),
    ),
]
