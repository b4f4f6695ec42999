"""Rows for the gaps between work (autoscaler/policy/gaps.py): from_zero_interval holds small
work at 0 replicas, idle_gap lets an idle batch go at once; and the rows in which they
stay out and a later rule decides."""

from __future__ import annotations

from dataclasses import replace

from autoscaler.policy import Action, BatchState, Reason
from tests.support.policy import DRAINING, HELD, NOW, UNHEALTHY, Row, obs, ours

# Small work at 0 replicas: 6 waiting, the oldest 40 s old, 2 tasks/s per replica (3 s).
SMALL = {"waiting": 6, "oldest_age_seconds": 40.0}


def started(ago: float | None, rate: float | None = 2.0) -> BatchState:
    """A batch at 0 replicas, last started from zero `ago` seconds before NOW, whose pods
    start in 20 s."""
    return BatchState(
        last_desired=0,
        last_seen_replicas=0,
        started_from_zero_at=None if ago is None else NOW - ago,
        rate_per_replica=rate,
        startup_seconds=20.0,
    )


FROM_ZERO_ROWS = [
    Row(
        "small work soon after the last start from zero waits",
        "from_zero_interval",
        obs(**SMALL),
        (0, Reason.FROM_ZERO_INTERVAL, Action.HOLD),
        state=started(90),
    ),
    Row(
        "the interval is the config's",
        "from_zero_interval",
        obs(**SMALL),
        (0, Reason.FROM_ZERO_INTERVAL, Action.HOLD),
        state=started(200),
        cfg={"from_zero_interval_seconds": 240},
    ),
    Row(
        "the interval has passed: from_zero starts one",
        "from_zero",
        obs(**SMALL),
        (1, Reason.FROM_ZERO, Action.UP),
        state=started(180),
    ),
    Row(
        "the oldest message would wait longer than the interval: at once",
        "from_zero",
        obs(waiting=6, oldest_age_seconds=160.0),
        (1, Reason.FROM_ZERO, Action.UP),
        state=started(170),
    ),
    Row(
        "more than one replica drains within the target: at once",
        "from_zero",
        obs(waiting=1201),
        (1, Reason.FROM_ZERO, Action.UP),
        state=started(30),
    ),
    Row(
        "pace unknown: at once",
        "from_zero",
        obs(**SMALL),
        (1, Reason.FROM_ZERO, Action.UP),
        state=started(30, rate=None),
    ),
    Row(
        "never started from zero: at once",
        "from_zero",
        obs(**SMALL),
        (1, Reason.FROM_ZERO, Action.UP),
        state=started(None),
    ),
    Row(
        "a draining claim: finish the work at once",
        "from_zero",
        obs(**SMALL, claim=DRAINING),
        (1, Reason.FROM_ZERO, Action.UP),
        state=started(30),
    ),
    Row(
        "a claim with a deadline: at once",
        "from_zero",
        obs(**SMALL, claim=replace(HELD, finish_by=NOW + 3600)),
        (1, Reason.FROM_ZERO, Action.UP),
        state=started(30),
    ),
    Row(
        "from_zero_interval_seconds 0: at once every time",
        "from_zero",
        obs(**SMALL),
        (1, Reason.FROM_ZERO, Action.UP),
        state=started(30),
        cfg={"from_zero_interval_seconds": 0},
    ),
    Row(
        "a guard not healthy: from_zero's hold says so, not the interval",
        "from_zero",
        obs(**SMALL, guards=(UNHEALTHY,)),
        (0, Reason.GUARD_HOLD, Action.HOLD),
        state=started(30),
    ),
    Row(
        "unclaimed: from_zero's hold says so",
        "from_zero",
        obs(**SMALL, claim=None),
        (0, Reason.UNCLAIMED, Action.HOLD),
        state=started(30),
    ),
]

# Idle on this tick (its first idle tick), with the events' counter and busy map.
IDLE = {"completed": 40, "idle_replicas": 1, "replicas": 1}
LONG = (45.0, 60.0, 30.0)  # gaps longer than a 20 s start

IDLE_GAP_ROWS = [
    Row(
        "gaps longer than a start: to zero on the first idle tick",
        "idle_gap",
        obs(**IDLE),
        (0, Reason.IDLE_GAP, Action.DOWN),
        state=ours(1, gaps=LONG, startup_seconds=20.0),
    ),
    Row(
        "several idle replicas: straight to min_replicas, not one per step interval",
        "idle_gap",
        obs(completed=40, idle_replicas=3, replicas=3),
        (1, Reason.IDLE_GAP, Action.DOWN),
        state=ours(3, gaps=LONG, startup_seconds=20.0, last_down_at=NOW - 15),
        cfg={"min_replicas": 1},
    ),
    Row(
        "no start measured yet: a start counts 30 s",
        "idle_gap",
        obs(**IDLE),
        (0, Reason.IDLE_GAP, Action.DOWN),
        state=ours(1, gaps=(45.0,)),
    ),
    Row(
        "no start measured yet, gaps of 25 s: the replica stays",
        "idle",
        obs(**IDLE),
        (1, Reason.IDLE, Action.NONE),
        state=ours(1, gaps=(25.0,)),
    ),
    Row(
        "most gaps shorter than a start: the replica waits out idle_after",
        "idle",
        obs(**IDLE),
        (1, Reason.IDLE, Action.NONE),
        state=ours(1, gaps=(15.0, 15.0, 60.0, 15.0, 60.0), startup_seconds=20.0),
    ),
    Row(
        "an even count: the lower median",
        "idle",
        obs(**IDLE),
        (1, Reason.IDLE, Action.NONE),
        state=ours(1, gaps=(15.0, 60.0), startup_seconds=20.0),
    ),
    Row(
        "gaps as long as a start: the replica stays",
        "idle",
        obs(**IDLE),
        (1, Reason.IDLE, Action.NONE),
        state=ours(1, gaps=(20.0,), startup_seconds=20.0),
    ),
    Row(
        "no gap measured yet: idle_after decides",
        "idle",
        obs(**IDLE),
        (1, Reason.IDLE, Action.NONE),
        state=ours(1, startup_seconds=20.0),
    ),
    Row(
        "no events: idle_after decides",
        "idle",
        obs(replicas=1),
        (1, Reason.IDLE, Action.NONE),
        state=ours(1, gaps=LONG, startup_seconds=20.0),
    ),
    Row(
        "no busy map: idle_after decides",
        "idle",
        obs(replicas=1, completed=40),
        (1, Reason.IDLE, Action.NONE),
        state=ours(1, gaps=LONG, startup_seconds=20.0),
    ),
    Row(
        "adaptive_idle off: idle_after decides",
        "idle",
        obs(**IDLE),
        (1, Reason.IDLE, Action.NONE),
        state=ours(1, gaps=LONG, startup_seconds=20.0),
        cfg={"adaptive_idle": False},
    ),
    Row(
        "a task running: not idle",
        "steady",
        obs(replicas=1, active=1, completed=40, idle_replicas=0),
        (1, Reason.STEADY, Action.NONE),
        state=ours(1, gaps=LONG, startup_seconds=20.0),
    ),
    Row(
        "idle long enough for idle_after: idle_to_zero comes first",
        "idle_to_zero",
        obs(**IDLE),
        (0, Reason.IDLE_TO_ZERO, Action.DOWN),
        state=ours(1, gaps=LONG, startup_seconds=20.0, idle_since=NOW - 120),
    ),
]
