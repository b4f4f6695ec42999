"""The in-process snapshot source: the broker and cluster readers, one collection at a time.

Concurrent callers (several scrapes, the status page, the autoscaler) share the
collection that is running instead of each hitting Redis. A backend that fails is
reported in the snapshot (`*_up` false, an error string) and never raises.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Protocol

import redis

from batchctl.config import Config
from batchctl.log import get_logger
from batchctl.redact import redact_url
from exporter.broker import BrokerReader, Discovery
from exporter.live import Live
from exporter.snapshot import (
    AgeState,
    Deployment,
    QueueStats,
    Snapshot,
    ages_at,
    build_queue_stats,
    select_queues,
    update_ages,
)

log = get_logger("batchctl.collect")


class KubeSource(Protocol):
    """What the source needs from the Deployment cache (exporter/informer.py)."""

    def state(self) -> KubeStateLike: ...


class KubeStateLike(Protocol):
    @property
    def deployments(self) -> dict[str, Deployment]: ...
    @property
    def up(self) -> bool: ...
    @property
    def error(self) -> str | None: ...


def _safe_error(exc: BaseException, url: str) -> str:
    # Redis error texts name host and port at most; scrub the URL anyway.
    text = f"{type(exc).__name__}: {exc}"
    return text.replace(url, redact_url(url))


class InProcessSource:
    """A `SnapshotSource` that reads Redis (and the Deployment cache) in this process."""

    def __init__(
        self,
        cfg: Config,
        reader: BrokerReader,
        kube: KubeSource | None = None,
        clock: Callable[[], float] = time.time,
        live: Live | None = None,
    ) -> None:
        self.cfg = cfg
        self.reader = reader
        self.kube = kube
        self.clock = clock
        # Adds events, progress and the last good snapshot to each one (exporter/live.py).
        self.live = live
        self.configured = {b.queue: b.deployment for b in cfg.batches}
        self.dropped_total = 0
        self._ages = AgeState()
        self._lock = threading.Lock()
        self._inflight: Future[Snapshot] | None = None
        self._last: Snapshot | None = None
        self._last_at = float("-inf")  # time.monotonic() of the last finished collection
        self._discovered_at = float("-inf")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._refresher: threading.Thread | None = None
        # Set once the first collection attempt has finished, whatever its outcome: from
        # then on every request is answered from a real reading (a broker that is down
        # included, as celery_broker_up 0), which is what /readyz reports.
        self.attempted = threading.Event()
        # How many callers joined a collection already in flight (single-flight hits).
        self.shared = 0
        # The last read's inputs and result, for the unchanged fast path.
        self._prev_lists: object = None
        self._prev_inputs: object = None
        self._prev_queues: tuple[QueueStats, ...] = ()
        self._generation = 0

    # -- public -------------------------------------------------------------------

    def collect(self) -> Snapshot:
        """A fresh snapshot, shared with any collection already under way."""
        with self._lock:
            fut = self._inflight
            leader = fut is None
            if leader:
                fut = self._inflight = Future()
            else:
                self.shared += 1
        assert fut is not None
        if leader:
            try:
                snap = self._collect_once()
                if self.live is not None:
                    snap = self.live(snap)
                self._last = snap
                self._last_at = time.monotonic()
                fut.set_result(snap)
            except BaseException as e:  # never leave followers waiting
                fut.set_exception(e)
                raise
            finally:
                with self._lock:
                    self._inflight = None
                self.attempted.set()
        return fut.result()

    @property
    def last(self) -> Snapshot | None:
        return self._last

    def start(self, refresh_interval: float | None = None) -> None:
        """Refresh queue discovery in the background, off the scrape path. With
        `refresh_interval`, also collect at once and then whenever no collection (a
        scrape's, or this one's) has run for that long: the snapshot stays fresh and
        the process becomes ready without waiting for a first scrape."""
        if self.cfg.broker.discover_queues and self._thread is None:
            self._thread = threading.Thread(
                target=self._discover_loop, name="discovery", daemon=True
            )
            self._thread.start()
        if refresh_interval is not None and self._refresher is None:
            self._refresher = threading.Thread(
                target=self._refresh_loop, args=(refresh_interval,), name="refresh", daemon=True
            )
            self._refresher.start()

    def stop(self) -> None:
        """Stop discovery, the refresh and the Deployment cache; close the broker connection."""
        self._stop.set()
        for thread in (self._thread, self._refresher):
            if thread is not None:
                thread.join(timeout=5)
        stop_kube = getattr(self.kube, "stop", None)
        if stop_kube is not None:
            stop_kube()
        if self.live is not None:
            self.live.stop()
        self.reader.close()

    # -- internals ----------------------------------------------------------------

    def _discover(self) -> None:
        try:
            found = self.reader.discover()
            self._discovered_at = self.clock()
            log.debug("discovered queues", count=len(found.queues))
        except redis.RedisError as e:
            log.warning("queue discovery failed", error=_safe_error(e, self.cfg.broker.url))

    def _discover_loop(self) -> None:
        interval = self.cfg.broker.discovery_interval_seconds
        while not self._stop.wait(interval):
            self._discover()

    def _refresh_loop(self, interval: float) -> None:
        wait = 0.0  # the first collection at once: readiness must not wait for a scrape
        while not self._stop.wait(wait):
            # Scrapes collect too: refresh only when nobody else has for `interval`
            # (monotonic age, not taken_at, so a clock step cannot stall it).
            age = time.monotonic() - self._last_at
            if age >= interval:
                try:
                    self.collect()
                except Exception:  # collect() reports backends in the snapshot; anything
                    # else is a bug, logged, and must not end the refresh.
                    log.exception("background collection failed")
                age = 0.0
            wait = max(0.0, interval - age)

    def _collect_once(self) -> Snapshot:
        start = time.perf_counter()
        now = self.clock()
        kube_state = self.kube.state() if self.kube is not None else None
        deployments = {}
        if kube_state is not None:
            for queue, name in self.configured.items():
                dep = kube_state.deployments.get(name)
                if dep is not None:
                    deployments[queue] = dep

        # Discovery runs synchronously until it first succeeds, then in the background.
        if self.cfg.broker.discover_queues and self._discovered_at == float("-inf"):
            self._discover()
        discovery: Discovery = self.reader.discovery
        names, dropped = select_queues(
            list(self.configured),
            discovery.queues if self.cfg.broker.discover_queues else (),
            self.cfg.broker.max_queues,
        )
        self.dropped_total += dropped

        common = {
            "taken_at": now,
            "kubernetes_up": kube_state.up if kube_state is not None else None,
            "kubernetes_error": kube_state.error if kube_state is not None else None,
            "queues_dropped": dropped,
            "deployments": deployments,
        }
        try:
            read = self.reader.read(names, now, list(self.configured))
        except Exception as e:
            # Always answer the scrape: a broker that is down (or answers something we
            # cannot read) shows as celery_broker_up 0 with the error, never as a 500.
            error = _safe_error(e, self.cfg.broker.url)
            if isinstance(e, redis.RedisError | OSError):
                log.warning("broker read failed", broker=self.reader.safe_url, error=error)
            else:
                log.exception("unexpected broker reply", broker=self.reader.safe_url)
            return Snapshot(
                duration_seconds=time.perf_counter() - start,
                broker_up=False,
                broker_error=error,
                **common,  # type: ignore[arg-type]
            )
        by_name = {d.name: d for d in deployments.values()} if kube_state is not None else None
        inputs = (names, read.unacked, read.memory, by_name)
        if read.lists is self._prev_lists and inputs == self._prev_inputs:
            # Nothing but the clock moved (idle batches): only the ages change.
            ages = ages_at(self._ages, now, names)
            queues = tuple(
                q._replace(oldest_age_seconds=ages[q.queue]) if q.waiting else q
                for q in self._prev_queues
            )
        else:
            self._generation += 1
            self._ages, ages = update_ages(self._ages, now, read.lists)
            queues = build_queue_stats(
                names,
                self.configured,
                self.cfg.broker.priority_steps,
                read.lists,
                read.unacked,
                ages,
                read.memory,
                by_name,
            )
        self._prev_lists, self._prev_inputs, self._prev_queues = read.lists, inputs, queues
        return Snapshot(
            duration_seconds=time.perf_counter() - start,
            broker_up=True,
            queues=queues,
            broker_memory_used_bytes=read.used_memory,
            broker_memory_max_bytes=read.max_memory,
            generation=self._generation,
            claims=read.claims,
            **common,  # type: ignore[arg-type]
        )
