"""Rows in which a step down meets the busy map (autoscaler/policy/scalein.py): it stops
idle replicas only, and waits while every replica is busy."""

from __future__ import annotations

from autoscaler.policy import Action, Reason
from tests.support.policy import NOW, Row, obs, ours

TAIL = {"slack_since": NOW - 60, "rate_per_replica": 2.0}
# Over the cap (5) by one, with work waiting: above_cap steps down one.
OVER = {"waiting": 50, "replicas": 6}

ROWS = [
    Row(
        "every replica busy: the tail's step down waits for an idle one",
        "step_down",
        obs(in_flight=20, replicas=4, idle_replicas=0),
        (4, Reason.BUSY_WORKERS, Action.HOLD),
        state=ours(4, **TAIL),
    ),
    Row(
        "every replica busy: a step down over the cap waits too",
        "above_cap",
        obs(idle_replicas=0, **OVER),
        (6, Reason.BUSY_WORKERS, Action.HOLD),
        state=ours(6),
    ),
    Row(
        "an idle replica: the step down stops it",
        "above_cap",
        obs(idle_replicas=1, **OVER),
        (5, Reason.ABOVE_CAP, Action.DOWN),
        state=ours(6),
    ),
    Row(
        "still busy after busy_wait_seconds: down all the same",
        "above_cap",
        obs(idle_replicas=0, **OVER),
        (5, Reason.ABOVE_CAP, Action.DOWN),
        state=ours(6, busy_since=NOW - 900),
    ),
    Row(
        "tasks that outlast any wait: no wait",
        "above_cap",
        obs(idle_replicas=0, **OVER),
        (5, Reason.ABOVE_CAP, Action.DOWN),
        state=ours(6),
        cfg={"max_task_seconds": 3600.0},
    ),
    Row(
        "fewer idle replicas than the step removes: those go",
        "idle_to_zero",
        obs(replicas=4, idle_replicas=2),
        (2, Reason.IDLE_TO_ZERO, Action.DOWN),
        state=ours(4, idle_since=NOW - 600),
    ),
]
