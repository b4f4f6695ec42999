"""Which worker holds which tasks: the busy map's input (no I/O).

The aggregator (exporter/events/aggregate.py) already follows the tasks a worker runs
(`task-started` until the task ends, reconciled with the heartbeats' `active`). This
module adds the tasks a worker holds without running them: received (`task-received`:
prefetched, or an ETA/countdown task the worker keeps until its time) and not started
or ended yet. A step down should stop neither kind of worker: a running task would be
cut or prolonged by a warm shutdown, and a held one goes back to the queue and waits
again (docs/design.md, "Stopping workers without losing work").

An entry leaves when the task starts or ends anywhere, when its worker goes offline or
expires, or when the aggregator forgets the task (its LRU of events.max_tracked_tasks):
memory stays bounded. No heartbeat counts held tasks, so a lost `task-started` keeps a
task held until one of those: the error errs towards "busy", which makes a step down
wait (at most the batch's busy_wait_seconds), never stop a worker that runs something.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class WorkerLoad:
    """One live worker as the events show it: its node name, the queue it serves, the tasks
    it runs now and those it holds (received, not started)."""

    hostname: str  # Celery's node name, name@host
    queue: str
    active: int
    reserved: int

    def to_json(self) -> dict[str, object]:
        return {
            "hostname": self.hostname,
            "queue": self.queue,
            "active": self.active,
            "reserved": self.reserved,
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> WorkerLoad:
        return cls(
            hostname=str(data["hostname"]),
            queue=str(data.get("queue", "")),
            active=int(str(data.get("active", 0))),
            reserved=int(str(data.get("reserved", 0))),
        )


class Held:
    """Tasks received by a worker and not started or ended yet, per worker node name.
    Not thread-safe: the aggregator calls it under its own lock."""

    def __init__(self) -> None:
        self._by_task: dict[str, str] = {}  # uuid -> hostname
        self._by_worker: dict[str, set[str]] = {}  # hostname -> uuids

    def received(self, hostname: str, uuid: str) -> None:
        """`task-received` by `hostname` (a redelivery moves the task to its new worker)."""
        self.leave(uuid)
        self._by_task[uuid] = hostname
        self._by_worker.setdefault(hostname, set()).add(uuid)

    def leave(self, uuid: str) -> None:
        """The task started, ended or was forgotten: no worker holds it any more."""
        host = self._by_task.pop(uuid, None)
        if host is None:
            return
        held = self._by_worker.get(host)
        if held is not None:
            held.discard(uuid)
            if not held:
                del self._by_worker[host]

    def worker_gone(self, hostname: str) -> None:
        """The worker went offline or expired: its held tasks went back to the queue."""
        for uuid in self._by_worker.pop(hostname, set()):
            self._by_task.pop(uuid, None)

    def count(self, hostname: str) -> int:
        return len(self._by_worker.get(hostname, ()))

    def __len__(self) -> int:
        return len(self._by_task)
