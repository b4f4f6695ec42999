"""What the events consumer knows at one moment, as plain immutable data (no I/O).

`EventsView` is the events part of a `Snapshot`: the exporter renders it as metric
families and on the status page, and the autoscaler sidecar reads it back from
/api/v1/snapshot (`to_json` / `from_json`, round-trip tested). Counters count since the
consumer started (`since`): an exporter that restarts starts them over, as Prometheus
counters may.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from batchctl.metrics import RUNTIME_BUCKETS, TASK_STATES
from exporter.events.workload import WorkerLoad

# The queue and task labels of what cannot be attributed or is over a cardinality cap.
UNKNOWN = "unknown"
OTHER = "other"
# How long a one-shot reading (`batchctl status`) waits for the workers' heartbeats:
# Celery's interval (2 s) and a little (the one asked for on connecting may come no sooner).
HEARTBEAT_SETTLE_SECONDS = 2.2
# States that end a task's run on a worker (a retried task comes back as a new run).
FINISHED = ("succeeded", "failed", "retried", "rejected", "revoked")


@dataclass(frozen=True, slots=True)
class TaskStats:
    """One (queue, task name): events by state and the run-time histogram."""

    queue: str
    task: str
    # state -> events (states without events left out), states from TASK_STATES.
    states: Mapping[str, int] = field(default_factory=dict)
    # Per bucket of RUNTIME_BUCKETS, then +Inf: observations in that bucket (not
    # cumulative); empty when none were observed.
    runtime_buckets: tuple[int, ...] = ()
    runtime_sum: float = 0.0

    @property
    def runtime_count(self) -> int:
        return sum(self.runtime_buckets)

    def cumulative_buckets(self) -> list[tuple[float, int]]:
        """(upper bound, observations at or below it) for every bucket, +Inf last."""
        counts = self.runtime_buckets or (0,) * (len(RUNTIME_BUCKETS) + 1)
        out, total = [], 0
        for bound, n in zip((*RUNTIME_BUCKETS, float("inf")), counts, strict=True):
            total += n
            out.append((bound, total))
        return out


@dataclass(frozen=True, slots=True)
class QueueActivity:
    """One queue now: tasks executing, live workers, and completions so far."""

    queue: str
    active: int = 0  # executing now (events, reconciled with heartbeats)
    workers: int = 0  # alive by their heartbeats
    succeeded: int = 0  # since the consumer started
    failed: int = 0
    # Task events of this queue have been seen since the consumer started: without
    # them its workers do not send task events (no -E), and rates from events would
    # read 0 where the truth is unknown.
    task_events: bool = False

    @property
    def completed(self) -> int:
        return self.succeeded + self.failed


@dataclass(frozen=True, slots=True)
class EventsView:
    """The events part of a snapshot; `Snapshot.events` is None when events are off."""

    up: bool  # consuming now
    since: float | None = None  # when counting started (unix seconds); None: never connected
    error: str | None = None  # why not up (never a credential)
    received: int = 0  # events consumed, any type
    queues: tuple[QueueActivity, ...] = ()
    tasks: tuple[TaskStats, ...] = ()
    # Live workers (by their heartbeats) and the tasks each runs and holds: the busy map
    # a scale-down ranks replicas by (exporter/events/workload.py).
    workers: tuple[WorkerLoad, ...] = ()
    _index: dict[str, QueueActivity] = field(
        default_factory=dict, compare=False, repr=False, init=False
    )

    def __post_init__(self) -> None:
        self._index.update({q.queue: q for q in self.queues})

    def queue(self, name: str) -> QueueActivity | None:
        return self._index.get(name)

    def to_json(self) -> dict[str, object]:
        return {
            "up": self.up,
            "since": self.since,
            "error": self.error,
            "received": self.received,
            "queues": [
                {
                    "queue": q.queue,
                    "active": q.active,
                    "workers": q.workers,
                    "succeeded": q.succeeded,
                    "failed": q.failed,
                    "completed": q.completed,
                    "task_events": q.task_events,
                }
                for q in self.queues
            ],
            "tasks": [
                {
                    "queue": t.queue,
                    "task": t.task,
                    "states": dict(t.states),
                    "runtime_buckets": list(t.runtime_buckets),
                    "runtime_sum": t.runtime_sum,
                }
                for t in self.tasks
            ],
            "workers": [w.to_json() for w in self.workers],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EventsView:
        """The inverse of `to_json`; unknown keys and states are ignored."""
        queues = tuple(
            QueueActivity(
                queue=str(q["queue"]),
                active=int(q.get("active", 0)),
                workers=int(q.get("workers", 0)),
                succeeded=int(q.get("succeeded", 0)),
                failed=int(q.get("failed", 0)),
                task_events=bool(q.get("task_events", False)),
            )
            for q in data.get("queues") or ()
        )
        tasks = tuple(
            TaskStats(
                queue=str(t["queue"]),
                task=str(t["task"]),
                states={
                    str(k): int(v) for k, v in (t.get("states") or {}).items() if k in TASK_STATES
                },
                runtime_buckets=tuple(int(n) for n in t.get("runtime_buckets") or ()),
                runtime_sum=float(t.get("runtime_sum", 0.0)),
            )
            for t in data.get("tasks") or ()
        )
        since = data.get("since")
        error = data.get("error")
        return cls(
            up=bool(data["up"]),
            since=None if since is None else float(since),
            error=None if error is None else str(error),
            received=int(data.get("received", 0)),
            queues=queues,
            tasks=tasks,
            workers=tuple(WorkerLoad.from_json(w) for w in data.get("workers") or ()),
        )
