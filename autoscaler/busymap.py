"""The busy map at each tick: every batch's replicas with the tasks they run and hold.

Celery's events (the exporter's `EventsView.workers`) say what each worker runs and
holds; the backend matches them to its replicas (`Backend.busy_map`: pods by name,
local workers by node name). The policy gets how many replicas are idle
(`BatchObservation.idle_replicas`); a step down then hands the ranked replicas to the
backend (`ScaleNote.replicas`), which stops the idle ones first. Without events, or
when the replicas cannot be listed, there is no busy map for the batch and the policy
scales in as before (the decision says so).

It also counts what the issue asked to watch: tasks running on the replicas a step down
stops (`celery_autoscaler_busy_stops_total`, 0 is the aim), and tells the backend once
when a step down starts waiting for an idle replica (a Kubernetes Event).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace

from autoscaler.backends import Backend, ScaleNote
from autoscaler.backends.ranking import Replica, idle_count, stop_order, tasks_on
from autoscaler.policy import BatchObservation, Decision, Reason
from batchctl.log import get_logger
from exporter.snapshot import Snapshot

log = get_logger("batchctl.autoscaler")

# A batch whose replicas cannot be listed is logged at most this often.
WARN_EVERY_SECONDS = 600.0


class BusyMaps:
    """Each batch's replicas with their load at the last tick, and the counts above."""

    def __init__(self) -> None:
        self.replicas: dict[str, tuple[Replica, ...]] = {}
        self.busy_stops: Counter[str] = Counter()  # queue -> tasks on stopped replicas
        self._waiting: set[str] = set()  # batches whose step down waits for an idle one
        self._warned: dict[str, float] = {}

    def observe(
        self, backend: Backend, snap: Snapshot, obs: Sequence[BatchObservation]
    ) -> tuple[list[BatchObservation], list[str]]:
        """`obs` with `idle_replicas` where the busy map is known, and the queues whose
        replicas could not be listed (an error each)."""
        self.replicas = {}
        if snap.events is None or not snap.events_up:
            return list(obs), []
        workers = snap.events.workers
        out, failed = [], []
        for o in obs:
            if not (o.data_ok and o.replicas_known) or o.replicas == 0:
                out.append(o)
                continue
            dep = snap.deployments.get(o.queue)
            try:
                found = backend.busy_map(o.queue, workers, dict(dep.selector) if dep else {})
            except Exception as e:  # RBAC, API down: scale in as without a busy map
                failed.append(o.queue)
                self._warn(o.queue, f"{type(e).__name__}: {e}")
                out.append(o)
                continue
            if found is None:
                out.append(o)
                continue
            self.replicas[o.queue] = tuple(found)
            out.append(replace(o, idle_replicas=idle_count(found)))
        return out, failed

    def ranked(self, queue: str) -> tuple[Replica, ...] | None:
        return self.replicas.get(queue)

    def stopping(self, d: Decision) -> None:
        """Count the tasks running on the replicas a step down stops, as ranked (the
        ReplicaSet and the local backend stop them in that order)."""
        found = self.replicas.get(d.queue)
        if d.desired >= d.current or found is None:
            return
        gone = stop_order(found)[: d.current - d.desired]
        self.busy_stops[d.queue] += tasks_on(gone)
        # Only counted so that a site sees it stay at 0: say which replicas they were.
        if tasks_on(gone):
            log.warning(
                "stopping replicas that run tasks",
                queue=d.queue,
                replicas=[r.name for r in gone if r.active],
                tasks=tasks_on(gone),
                reason=str(d.reason),
            )

    def tell_waits(self, backend: Backend, decisions: Sequence[Decision]) -> None:
        """Tell the backend once when a batch's step down starts waiting for an idle
        replica (best effort)."""
        for d in decisions:
            if d.reason != Reason.BUSY_WORKERS:
                self._waiting.discard(d.queue)
                continue
            if d.queue in self._waiting:
                continue
            self._waiting.add(d.queue)
            note = ScaleNote(d.current, d.current, str(d.reason), d.detail)
            try:
                backend.waiting(d.queue, note)
            except Exception as e:
                log.warning("cannot tell the wait", queue=d.queue, error=type(e).__name__)

    def _warn(self, queue: str, error: str) -> None:
        now = time.monotonic()
        last = self._warned.get(queue)
        if last is not None and now - last < WARN_EVERY_SECONDS:
            return
        self._warned[queue] = now
        log.warning(
            "no busy map: cannot list the batch's replicas; a scale-down stops whichever "
            "Kubernetes picks",
            queue=queue,
            error=error,
        )
