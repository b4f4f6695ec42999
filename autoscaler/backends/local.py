"""The local backend: real `celery worker` processes, one process per replica.

It plays the part Kubernetes plays in production, with the same stopping rules
(docs/design.md, "Stopping workers without losing work"): a replica is removed with
SIGTERM, Celery's warm shutdown, which finishes the running tasks and puts the
prefetched ones back on the queue; only after a grace period does it escalate to
SIGKILL, loudly, since a task cut off then waits in `unacked` for the visibility
timeout.

The broker URL reaches the workers through the environment, never the command
line, so a password never shows in `ps`. Worker output goes to one log file per
process in the run directory; readiness is read from the worker's own
"<node> ready." log line (autoscaler/backends/workerproc.py: one worker process).

Thread-safe: every public method takes one lock, so a status thread may read while
the control loop acts. Call `reap()` (or any other public method) regularly: that is
where exited processes are collected and grace periods enforced.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType

from celery.utils.nodenames import nodesplit

from autoscaler.backends import ScaleNote
from autoscaler.backends.ranking import Replica, stop_order
from autoscaler.backends.workerproc import (
    WorkerExit,
    WorkerProcess,
    celery_worker_command,
    start_worker,
    worker_env,
)
from batchctl.config import Config
from batchctl.log import get_logger
from exporter.events.workload import WorkerLoad

log = get_logger(__name__)

DEFAULT_GRACE_SECONDS = 60.0
# Added to a batch's max_task_seconds: Celery needs a moment after the last task to
# restore the prefetched messages and close its connection.
GRACE_MARGIN_SECONDS = 10.0
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


class WorkerPool:
    """Scale batches by starting and warm-stopping local Celery worker processes."""

    def __init__(
        self,
        *,
        broker_url: str,
        run_dir: Path,
        app: str,
        concurrency: int = 2,
        # For queues without their own (`prefetch_by_queue`, which `from_config` fills
        # from each batch's `prefetch_multiplier`). 1, not Celery's 4: new replicas then
        # find work instead of it sitting prefetched in older ones.
        prefetch_multiplier: int = 1,
        prefetch_by_queue: Mapping[str, int] | None = None,
        grace_seconds: float = DEFAULT_GRACE_SECONDS,
        grace_by_queue: Mapping[str, float] | None = None,
        keyprefix: str = "",
        pool: str = "prefork",
        loglevel: str = "INFO",
        cwd: Path | None = None,
        events: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if concurrency < 1 or prefetch_multiplier < 1:
            raise ValueError("concurrency and prefetch_multiplier must be >= 1")
        self.broker_url = broker_url
        self.run_dir = Path(run_dir)
        self.app = app
        self.concurrency = concurrency
        self.prefetch_multiplier = prefetch_multiplier
        self.prefetch_by_queue = dict(prefetch_by_queue or {})
        if any(n < 1 for n in self.prefetch_by_queue.values()):
            raise ValueError("prefetch_multiplier must be >= 1")
        self.grace_seconds = grace_seconds
        self.grace_by_queue = dict(grace_by_queue or {})
        self.keyprefix = keyprefix
        self.pool = pool
        self.loglevel = loglevel
        self.cwd = cwd
        # Send Celery's task events (-E) and heartbeats, for the exporter's consumer.
        self.events = events
        self._clock = clock
        self._lock = threading.RLock()
        self._workers: list[WorkerProcess] = []
        self._seq = 0
        # Distinguishes this actuator's node names from another's in the same run dir.
        self._token = secrets.token_hex(3)
        self.run_dir.mkdir(parents=True, exist_ok=True)

    @classmethod
    def from_config(cls, cfg: Config, run_dir: Path, **overrides: object) -> WorkerPool:
        """An actuator for `cfg`: each batch's grace period covers its longest task, and
        its workers prefetch as its `prefetch_multiplier` says (what the autoscaler's
        in-flight floor assumes of them)."""
        kwargs: dict[str, object] = {
            "broker_url": cfg.broker.url,
            "run_dir": run_dir,
            "app": cfg.autoscaler.local_app,
            "concurrency": cfg.autoscaler.local_concurrency,
            "keyprefix": cfg.broker.global_keyprefix,
            "grace_by_queue": {
                b.queue: b.max_task_seconds + GRACE_MARGIN_SECONDS for b in cfg.batches
            },
            "prefetch_by_queue": {b.queue: b.prefetch_multiplier for b in cfg.batches},
            "events": cfg.events.enabled,
        }
        kwargs.update(overrides)
        return cls(**kwargs)  # type: ignore[arg-type]

    # -- queries ---------------------------------------------------------------

    def get_replicas(self, queue: str) -> int:
        """Live replicas of `queue` that are not on their way out."""
        with self._lock:
            self.reap()
            return sum(1 for w in self._workers if w.queue == queue and not w.terminating)

    def ready_replicas(self, queue: str) -> int:
        """Live, not terminating replicas whose consumer is running."""
        with self._lock:
            self.reap()
            now = self._clock()
            return sum(
                1
                for w in self._workers
                if w.queue == queue and not w.terminating and w.poll_ready(now)
            )

    def terminating_replicas(self, queue: str | None = None) -> int:
        """Replicas asked to stop that are still finishing their tasks."""
        with self._lock:
            self.reap()
            return sum(1 for w in self._workers if w.terminating and queue in (None, w.queue))

    def workers(self, queue: str | None = None) -> list[WorkerProcess]:
        """The live worker records (terminating ones included), oldest first."""
        with self._lock:
            self.reap()
            return [w for w in self._workers if queue in (None, w.queue)]

    def live(self, queue: str) -> list[tuple[WorkerProcess, bool]]:
        """The replicas of `queue` that are not stopping, oldest first, and whether each
        is ready."""
        with self._lock:
            self.reap()
            now = self._clock()
            return [
                (w, w.poll_ready(now))
                for w in self._workers
                if w.queue == queue and not w.terminating
            ]

    def grace_for(self, queue: str) -> float:
        return self.grace_by_queue.get(queue, self.grace_seconds)

    def prefetch_for(self, queue: str) -> int:
        return self.prefetch_by_queue.get(queue, self.prefetch_multiplier)

    # -- actions ---------------------------------------------------------------

    def set_replicas(self, queue: str, n: int, stop_first: Sequence[str] = ()) -> int:
        """Start or warm-stop workers until `queue` has `n` replicas; return that count.

        Removal takes the workers named in `stop_first` (node names, in that order: the
        busy map's idle ones first, autoscaler/backends/ranking.py), then prefers
        workers that are not ready yet (they hold no work), then the newest ones (they
        have the least prefetched and the shortest-running tasks). Workers already
        terminating are left to finish and do not count.
        """
        if n < 0:
            raise ValueError(f"replicas must be >= 0, got {n}")
        with self._lock:
            self.reap()
            now = self._clock()
            live = [w for w in self._workers if w.queue == queue and not w.terminating]
            if n > len(live):
                for _ in range(n - len(live)):
                    self._spawn(queue)
            elif n < len(live):
                # As ranked, then not ready first, then newest first.
                rank = {node: i for i, node in enumerate(stop_first)}
                order = sorted(
                    live,
                    key=lambda w: (
                        rank.get(w.node, len(rank)),
                        w.poll_ready(now),
                        -w.started_at,
                    ),
                )
                for w in order[: len(live) - n]:
                    self._stop(w)
            return n

    def reap(self) -> list[WorkerExit]:
        """Collect exited workers and SIGKILL those past their grace period."""
        with self._lock:
            now = self._clock()
            exits: list[WorkerExit] = []
            still: list[WorkerProcess] = []
            for w in self._workers:
                rc = w.proc.poll()
                if rc is None:
                    self._enforce_grace(w, now)
                    still.append(w)
                    continue
                exits.append(self._exited(w, rc))
            self._workers = still
            return exits

    def shutdown(self, timeout: float | None = None) -> list[WorkerExit]:
        """Warm-stop every worker and wait for them all; SIGKILL after the grace period.

        `timeout` caps the wait for everyone (default: each worker's own grace period).
        """
        with self._lock:
            for w in self._workers:
                if not w.terminating:
                    self._stop(w)
            exits = self.reap()
            deadline = None if timeout is None else self._clock() + timeout
            while self._workers:
                if deadline is not None and self._clock() >= deadline:
                    for w in self._workers:
                        self._kill(w, "shutdown timeout")
                # Waiting for processes to exit: block on the oldest briefly, then
                # re-check all of them (and their grace periods) in reap().
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self._workers[0].proc.wait(timeout=0.05)
                exits.extend(self.reap())
            return exits

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.shutdown()

    # -- internals -------------------------------------------------------------

    def _command(self, queue: str, node: str) -> list[str]:
        return celery_worker_command(
            app=self.app,
            queue=queue,
            node=node,
            concurrency=self.concurrency,
            pool=self.pool,
            prefetch_multiplier=self.prefetch_for(queue),
            loglevel=self.loglevel,
            events=self.events,
        )

    def _env(self) -> dict[str, str]:
        return worker_env(self.broker_url, self.keyprefix)

    def _spawn(self, queue: str) -> WorkerProcess:
        self._seq += 1
        # The queue first, for people reading logs (the exporter learns a worker's queues
        # from its own answer to `active_queues`, never from its name).
        node = f"{_UNSAFE.sub('_', queue)}-{self._token}-{self._seq}"
        log_path = self.run_dir / f"{node}.log"
        command = self._command(queue, node)
        w = start_worker(queue, node, command, self._env(), log_path, self.cwd, self._clock())
        self._workers.append(w)
        log.info("worker_started", queue=queue, node=node, pid=w.pid, log=str(log_path))
        return w

    def _stop(self, w: WorkerProcess) -> None:
        if not w.terminate(self._clock()):
            return
        log.info(
            "worker_stopping",
            queue=w.queue,
            node=w.node,
            pid=w.pid,
            grace_seconds=self.grace_for(w.queue),
        )

    def _enforce_grace(self, w: WorkerProcess, now: float) -> None:
        if w.stop_requested_at is None or w.killed:
            return
        if now - w.stop_requested_at >= self.grace_for(w.queue):
            self._kill(w, "grace period exceeded")

    def _kill(self, w: WorkerProcess, why: str) -> None:
        if w.killed or not w.kill():
            return
        log.error(
            "worker_killed",
            queue=w.queue,
            node=w.node,
            pid=w.pid,
            reason=why,
            grace_seconds=self.grace_for(w.queue),
            consequence=(
                "tasks it was running stay in `unacked` and are redelivered only "
                "after the broker's visibility_timeout; raise max_task_seconds"
            ),
            log=str(w.log_path),
        )

    def _exited(self, w: WorkerProcess, rc: int) -> WorkerExit:
        requested = w.terminating
        fields = {"queue": w.queue, "node": w.node, "pid": w.pid, "returncode": rc}
        if requested and not w.killed:
            log.info("worker_stopped", **fields)
        elif not requested:
            log.warning("worker_exited_unexpectedly", log=str(w.log_path), **fields)
        w.kill_leftovers()
        return WorkerExit(w.queue, w.node, w.pid, rc, requested, w.killed, w.log_path)


class LocalBackend:
    """Replicas are local `celery worker` processes (the demo and the tests)."""

    name = "local"

    def __init__(self, pool: WorkerPool, queues: Sequence[str]) -> None:
        self.pool = pool
        self.queues = list(queues)

    @classmethod
    def from_config(cls, cfg: Config, run_dir: Path) -> LocalBackend:
        return cls(WorkerPool.from_config(cfg, run_dir), [b.queue for b in cfg.batches])

    def observed(self) -> Mapping[str, tuple[int, int]]:
        return {q: (self.pool.get_replicas(q), self.pool.ready_replicas(q)) for q in self.queues}

    def set_replicas(self, queue: str, n: int, note: ScaleNote | None = None) -> None:
        ranked = note.replicas if note is not None and note.replicas is not None else ()
        self.pool.set_replicas(queue, n, [r.name for r in stop_order(ranked)])

    def busy_map(
        self, queue: str, workers: Sequence[WorkerLoad], selector: Mapping[str, str]
    ) -> list[Replica]:
        """The batch's worker processes (not stopping), each with the load of the worker
        whose node name is its own (`<node>@<host>`)."""
        by_node = {nodesplit(w.hostname)[0]: w for w in workers}
        out = []
        for proc, ready in self.pool.live(queue):
            w = by_node.get(proc.node)
            out.append(
                Replica(proc.node, ready, w.active if w else None, w.reserved if w else None)
            )
        return out

    def waiting(self, queue: str, note: ScaleNote) -> None:
        log.info("a step down waits for an idle worker", queue=queue, detail=note.detail)

    def other_controllers(self) -> None:
        return None  # no other controller can scale these replicas

    def close(self) -> None:
        self.pool.shutdown()
