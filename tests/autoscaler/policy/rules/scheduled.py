"""Rows in which scheduled decides: the only work left is ETA tasks a worker holds, and
rows that show what scheduled messages do to the other rules (the floor, step_down,
drained)."""

from __future__ import annotations

from dataclasses import replace

from autoscaler.policy import Action, Reason
from tests.support.policy import DRAINING, HELD, NOW, SHED, Row, obs, ours

ROWS = [
    # --- 7. nothing waiting: scheduled
    Row(
        "40 ETA tasks on one worker, manual 4 ended, idle long enough: to one",
        "scheduled",
        obs(replicas=4, in_flight=40, scheduled=40),
        (1, Reason.SCHEDULED, Action.DOWN),
        state=ours(4, idle_since=NOW - 120),
        cfg={"worker_concurrency": 2, "prefetch_multiplier": 1},
    ),
    Row(
        "only scheduled work at one replica: kept there, never zero",
        "scheduled",
        obs(replicas=1, in_flight=40, scheduled=40),
        (1, Reason.SCHEDULED, Action.NONE),
        state=ours(1, idle_since=NOW - 3600),
    ),
    Row(
        "only scheduled work, min_replicas 2: min_replicas",
        "scheduled",
        obs(replicas=5, in_flight=3, scheduled=3),
        (2, Reason.SCHEDULED, Action.DOWN),
        state=ours(5, idle_since=NOW - 300),
        cfg={"min_replicas": 2},
    ),
    Row(
        "a drain waits for its scheduled tasks: one replica keeps them",
        "scheduled",
        obs(replicas=1, in_flight=5, scheduled=5, claim=DRAINING),
        (1, Reason.SCHEDULED, Action.NONE),
        state=ours(1, idle_since=NOW - 300),
    ),
    Row(
        "a deadline's idle drop does not take the replica that keeps them",
        "scheduled",
        obs(replicas=1, in_flight=5, scheduled=5, claim=replace(HELD, finish_by=NOW + 3600)),
        (1, Reason.SCHEDULED, Action.NONE),
        state=ours(1, idle_since=NOW - 30),
    ),
    Row(
        "gaps between work longer than a pod start (idle_gap) do not either",
        "scheduled",
        obs(replicas=1, in_flight=5, scheduled=5, completed=40, idle_replicas=1),
        (1, Reason.SCHEDULED, Action.NONE),
        state=ours(1, idle_since=NOW - 30, gaps=(45.0, 60.0, 30.0), startup_seconds=20.0),
    ),
]

# Where scheduled messages meet the other rules (their rows live with those rules'
# sections in test_rules.py's order: they are listed here to keep the ETA cases together).
OTHER_ROWS = [
    Row(
        "scheduled, not yet idle long: one down per step interval, like an idle batch",
        "idle_step_down",
        obs(replicas=4, in_flight=40, scheduled=40),
        (3, Reason.IDLE_STEP_DOWN, Action.DOWN),
        state=ours(4, idle_since=NOW - 15),
    ),
    Row(
        "the floor counts one replica for the scheduled, not their prefetch slots",
        "guard_shed",
        obs(replicas=3, in_flight=42, scheduled=40, waiting=5, guards=(SHED,)),
        (2, Reason.GUARD_SHED, Action.DOWN),
        state=ours(3, last_down_at=NOW - 120),
        cfg={"worker_concurrency": 2, "prefetch_multiplier": 1},
    ),
    Row(
        "step_down's drain ETA leaves out the scheduled: 20 in flight done soon, 400 later",
        "step_down",
        obs(in_flight=420, scheduled=400, replicas=4),
        (3, Reason.STEP_DOWN, Action.DOWN),
        state=ours(4, slack_since=NOW - 60, rate_per_replica=2.0),
    ),
]
