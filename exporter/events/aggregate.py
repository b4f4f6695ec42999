"""Celery events -> per-queue counts, run times, active tasks and live workers (no I/O).

`EventAggregator.handle` takes one event as Celery's receiver hands it over (a dict with
`type`, `uuid`, `hostname`, `local_received`, ...; docs/design.md, "Celery events") and
`view(now)` returns what is known as an immutable `EventsView`. Memory is bounded however
long it runs: tasks are remembered in an LRU of `events.max_tracked_tasks`, workers expire
by Celery's own heartbeat rule (and are capped), and the label sets are capped by
`events.max_task_names` and `events.max_queues`.

**Which queue.** From the task's `task-sent` event when the producer sends it
(`task_send_sent_event`); else from the worker that received it, when that worker
consumes exactly one queue, by its own answer to Celery's `active_queues` (asked by
exporter/events/queues.py, off this thread: `due`, `asked`, `learned`); else `unknown`.
Never from a worker's name: names say nothing reliable about queues. A worker counts in
`workers` under every queue it consumes, or under `unknown` until it answered.

**Active tasks** are the tasks a worker started and has not finished, by the task events;
each heartbeat (`active`, the worker's count of executing tasks) corrects them, so lost
events heal within a heartbeat or two: tasks we saw start but the worker no longer runs
are dropped, oldest first (only those that started before the previous heartbeat: a
finish may still be on its way, since workers buffer task events but not heartbeats);
tasks it runs that we did not see start (an exporter that restarted mid-stream, a lost
`task-started`) are counted as `unseen` until their events arrive or the next heartbeat.
"""

from __future__ import annotations

import bisect
import contextlib
import math
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from batchctl.config import EventsConfig
from batchctl.metrics import RUNTIME_BUCKETS, TASK_STATES
from exporter.events.model import (
    OTHER,
    UNKNOWN,
    EventsView,
    QueueActivity,
    TaskStats,
)
from exporter.events.waiting import SentWaiting
from exporter.events.workers import DEFAULT_FREQ, Worker, alive, event_time
from exporter.events.workload import Held, WorkerLoad

# At most this many workers are tracked (each expires with its heartbeats anyway).
MAX_WORKERS = 4096
# Label values are cut to this many characters: a hostile name must not grow memory.
MAX_LABEL = 200

_STATE_INDEX = {s: i for i, s in enumerate(TASK_STATES)}
_SUCCEEDED, _FAILED = _STATE_INDEX["succeeded"], _STATE_INDEX["failed"]
_N_BUCKETS = len(RUNTIME_BUCKETS) + 1


class _Task:
    __slots__ = ("name", "queue", "worker")

    def __init__(self, queue: str | None, name: str | None, worker: str | None) -> None:
        self.queue = queue  # a label (admitted), or None until known
        self.name = name  # a label (admitted), or None until known
        self.worker = worker  # hostname while it runs there


class _Stats:
    __slots__ = ("buckets", "runtime_sum", "states")

    def __init__(self) -> None:
        self.states = [0] * len(TASK_STATES)
        self.buckets: list[int] | None = None
        self.runtime_sum = 0.0


class EventAggregator:
    """Folds Celery events into bounded counts. Thread-safe: the consumer thread calls
    `handle`, collections call `view`."""

    def __init__(self, cfg: EventsConfig, batches: Mapping[str, str]) -> None:
        """`batches` maps the configured queues to their Deployments."""
        self.cfg = cfg
        self.configured = frozenset(batches)
        self._lock = threading.Lock()
        # Set when a worker is first tracked: the queue learner asks it at once.
        self.new_worker = threading.Event()
        self._tasks: OrderedDict[str, _Task] = OrderedDict()
        self._workers: dict[str, Worker] = {}
        self._stats: dict[tuple[str, str], _Stats] = {}
        self._queues: dict[str, str] = {}  # admitted other queue names (as labels)
        self._task_names: dict[str, str] = {}  # admitted task names
        self._with_task_events: set[str] = set()
        self.held = Held()  # tasks received, not started: per worker (the busy map)
        self.received = 0
        self.evicted = 0  # tasks forgotten by the LRU
        # Sent and not heard of since: dates waiting tasks where the broker cannot.
        self.waiting = SentWaiting(cfg.max_tracked_tasks)
        self._handlers = {
            "task-sent": self._sent,
            "task-received": self._received,
            "task-started": self._started,
            "task-succeeded": self._finished,
            "task-failed": self._finished,
            "task-retried": self._finished,
            "task-rejected": self._finished,
            "task-revoked": self._finished,
            "worker-online": self._heartbeat,
            "worker-heartbeat": self._heartbeat,
            "worker-offline": self._offline,
        }

    # -- input ---------------------------------------------------------------------

    def handle(self, event: Mapping[str, Any]) -> None:
        """Fold one event in; anything malformed is counted and otherwise ignored."""
        with self._lock:
            self.received += 1
            kind = event.get("type")
            if not isinstance(kind, str):
                return
            handler = self._handlers.get(kind)
            if handler is None:
                return
            # A hostile or broken event is counted in `received`, and nothing else.
            with contextlib.suppress(TypeError, ValueError, AttributeError):
                handler(kind, event)
            self.waiting.observe(kind, event)

    def _sent(self, kind: str, ev: Mapping[str, Any]) -> None:
        task = self._task(ev)
        if task is None:
            return
        queue = ev.get("queue")
        if isinstance(queue, str) and queue:
            task.queue = self._queue_label(queue)
        if ev.get("name"):
            task.name = self._name_label(ev.get("name"))
        self._count(task, "sent")

    def _received(self, kind: str, ev: Mapping[str, Any]) -> None:
        task = self._task(ev)
        if task is None:
            return
        if ev.get("name"):
            task.name = self._name_label(ev.get("name"))
        worker = self._worker_of(ev)
        if worker is not None:
            self._attribute(task, *worker)
            self.held.received(worker[0], str(ev["uuid"])[:MAX_LABEL])
        self._count(task, "received")

    def _started(self, kind: str, ev: Mapping[str, Any]) -> None:
        task = self._task(ev)
        worker = self._worker_of(ev)
        if task is None or worker is None:
            if task is not None:
                self._count(task, "started")
            return
        host, w = worker
        self._attribute(task, host, w)
        uuid = str(ev["uuid"])
        self.held.leave(uuid[:MAX_LABEL])
        if task.worker is not None and task.worker != host:
            self._stop_running(uuid, task)  # redelivered to another worker
        if uuid not in w.running:
            w.running[uuid] = event_time(ev)
            if w.unseen > 0:
                w.unseen -= 1  # the heartbeat already counted it
        task.worker = host
        self._count(task, "started")

    def _finished(self, kind: str, ev: Mapping[str, Any]) -> None:
        task = self._task(ev)
        worker = self._worker_of(ev)
        if task is None:
            return
        if worker is not None:
            self._attribute(task, *worker)
            uuid = str(ev["uuid"])
            if task.worker is None and uuid not in worker[1].running and worker[1].unseen > 0:
                worker[1].unseen -= 1  # one we did not see start
        self._stop_running(str(ev["uuid"]), task)
        self.held.leave(str(ev["uuid"])[:MAX_LABEL])
        state = kind.removeprefix("task-")
        stats = self._count(task, state)
        if state == "succeeded":
            runtime = ev.get("runtime")
            if isinstance(runtime, int | float) and math.isfinite(runtime) and runtime >= 0:
                if stats.buckets is None:
                    stats.buckets = [0] * _N_BUCKETS
                stats.buckets[bisect.bisect_left(RUNTIME_BUCKETS, runtime)] += 1
                stats.runtime_sum += float(runtime)

    def _heartbeat(self, kind: str, ev: Mapping[str, Any]) -> None:
        found = self._worker_of(ev)
        if found is None:
            return
        _, w = found
        now = event_time(ev)
        freq = ev.get("freq")
        w.freq = float(freq) if isinstance(freq, int | float) and freq > 0 else DEFAULT_FREQ
        active = ev.get("active")
        if isinstance(active, int) and active >= 0:
            self._reconcile(w, active)
        w.prev_heartbeat_at = w.heartbeat_at if w.heartbeat_at is not None else now
        w.heartbeat_at = now

    def _offline(self, kind: str, ev: Mapping[str, Any]) -> None:
        host = ev.get("hostname")
        w = self._workers.pop(host, None) if isinstance(host, str) else None
        if isinstance(host, str):
            self.held.worker_gone(host)
        if w is not None:
            for uuid in w.running:
                task = self._tasks.get(uuid)
                if task is not None:
                    task.worker = None

    # -- bookkeeping -------------------------------------------------------------------

    def _task(self, ev: Mapping[str, Any]) -> _Task | None:
        uuid = ev.get("uuid")
        if not isinstance(uuid, str) or not uuid:
            return None
        uuid = uuid[:MAX_LABEL]
        task = self._tasks.get(uuid)
        if task is not None:
            self._tasks.move_to_end(uuid)
            return task
        task = self._tasks[uuid] = _Task(None, None, None)
        if len(self._tasks) > self.cfg.max_tracked_tasks:
            old_uuid, old = self._tasks.popitem(last=False)
            self.evicted += 1
            self._stop_running(old_uuid, old)
            self.held.leave(old_uuid)
        return task

    def _worker_of(self, ev: Mapping[str, Any]) -> tuple[str, Worker] | None:
        host = ev.get("hostname")
        if not isinstance(host, str) or not host:
            return None
        host = host[:MAX_LABEL]
        w = self._workers.get(host)
        now = event_time(ev)
        if w is None:
            if len(self._workers) >= MAX_WORKERS:
                self._expire(now)
                if len(self._workers) >= MAX_WORKERS:
                    return None
            w = self._workers[host] = Worker(now)
            self.new_worker.set()
        w.last_seen = now
        return host, w

    def _attribute(self, task: _Task, host: str, w: Worker) -> None:
        """Settle the task's queue from its worker, when the worker consumes one queue."""
        if task.queue is None:
            task.queue = w.queue

    def _stop_running(self, uuid: str, task: _Task) -> None:
        if task.worker is None:
            return
        w = self._workers.get(task.worker)
        if w is not None:
            w.running.pop(uuid, None)
        task.worker = None

    def _reconcile(self, w: Worker, active: int) -> None:
        excess = len(w.running) - active
        if excess > 0:
            # Started before the previous heartbeat and still not finished, although the
            # worker runs fewer: their finish was lost. Oldest first.
            stale = [u for u, at in w.running.items() if at <= w.prev_heartbeat_at][:excess]
            for uuid in stale:
                del w.running[uuid]
                task = self._tasks.get(uuid)
                if task is not None:
                    task.worker = None
        w.unseen = max(0, active - len(w.running))

    def _count(self, task: _Task, state: str) -> _Stats:
        queue = task.queue or UNKNOWN
        key = (queue, task.name or UNKNOWN)
        stats = self._stats.get(key)
        if stats is None:
            stats = self._stats[key] = _Stats()
        stats.states[_STATE_INDEX[state]] += 1
        self._with_task_events.add(queue)
        return stats

    def _queue_label(self, queue: str) -> str:
        queue = queue[:MAX_LABEL]
        if queue in self.configured or queue in self._queues:
            return queue
        if len(self._queues) < self.cfg.max_queues:
            self._queues[queue] = queue
            return queue
        return OTHER

    def _name_label(self, name: object) -> str:
        text = str(name)[:MAX_LABEL]
        if text in self._task_names:
            return text
        if len(self._task_names) < self.cfg.max_task_names:
            self._task_names[text] = text
            return text
        return OTHER

    def _expire(self, now: float) -> None:
        for host in [h for h, w in self._workers.items() if not alive(w, now)]:
            self._offline("worker-offline", {"hostname": host})

    # -- the workers' queues (exporter/events/queues.py asks them) ------------------------

    def due(self, now: float, refresh: float) -> list[str]:
        """Live workers to ask which queues they consume: those never asked, those that
        did not answer (again after 1, 2, 4 ... up to RETRY_SECONDS), and the others every
        `refresh` seconds."""
        with self._lock:
            self.new_worker.clear()
            return [
                h for h, w in self._workers.items() if alive(w, now) and w.ask_due(now, refresh)
            ]

    def unanswered(self, now: float) -> int:
        """Live workers whose queues are not known yet."""
        with self._lock:
            return sum(1 for w in self._workers.values() if alive(w, now) and w.queues is None)

    def asked(self, hosts: list[str], now: float) -> None:
        with self._lock:
            for host in hosts:
                w = self._workers.get(host)
                if w is not None:
                    w.asked_at = now
                    w.tries += 1

    def learned(self, host: str, queues: list[str]) -> None:
        """`host` answered: it consumes `queues` (their names)."""
        with self._lock:
            w = self._workers.get(host[:MAX_LABEL])
            if w is not None:
                w.queues = tuple(sorted({self._queue_label(q) for q in queues}))
                w.tries = 0

    # -- output ------------------------------------------------------------------------

    def view(self, now: float, *, up: bool, since: float | None, error: str | None) -> EventsView:
        """What is known at `now`: workers past their heartbeat window are dropped first."""
        with self._lock:
            self._expire(now)
            active: dict[str, int] = {}
            workers: dict[str, int] = {}
            loads: list[WorkerLoad] = []
            for host, w in self._workers.items():
                mine = w.queue or UNKNOWN
                for uuid in w.running:
                    task = self._tasks.get(uuid)
                    queue = (task.queue if task is not None else None) or mine
                    active[queue] = active.get(queue, 0) + 1
                if w.unseen:
                    active[mine] = active.get(mine, 0) + w.unseen
                if w.heartbeat_at is not None:
                    for queue in w.queues if w.queues is not None else (UNKNOWN,):
                        workers[queue] = workers.get(queue, 0) + 1
                    running = len(w.running) + w.unseen
                    # A worker of several queues is matched to pods by its name alone.
                    loads.append(WorkerLoad(host, mine, running, self.held.count(host)))
            tasks = []
            succeeded: dict[str, int] = {}
            failed: dict[str, int] = {}
            for (queue, name), s in sorted(self._stats.items()):
                states = {TASK_STATES[i]: n for i, n in enumerate(s.states) if n}
                tasks.append(TaskStats(queue, name, states, tuple(s.buckets or ()), s.runtime_sum))
                succeeded[queue] = succeeded.get(queue, 0) + s.states[_SUCCEEDED]
                failed[queue] = failed.get(queue, 0) + s.states[_FAILED]
            names = sorted(
                self.configured | set(active) | set(workers) | set(succeeded) | set(failed)
            )
            queues = tuple(
                QueueActivity(
                    q,
                    active.get(q, 0),
                    workers.get(q, 0),
                    succeeded.get(q, 0),
                    failed.get(q, 0),
                    q in self._with_task_events,
                )
                for q in names
            )
            busy = tuple(sorted(loads, key=lambda x: x.hostname))
            return EventsView(up, since, error, self.received, queues, tuple(tasks), busy)

    def tracked(self) -> tuple[int, int]:
        """(tasks remembered, workers tracked): what bounds memory."""
        with self._lock:
            return len(self._tasks), len(self._workers)
