"""The in-process snapshot source: the broker and cluster readers, one collection at a time.

The broker is read through `exporter.broker.protocol.BrokerReader` (any broker), the
Deployments through `KubeSource` (exporter/kube/), Celery's events and the batches'
progress through `Live` (exporter/live.py).

Concurrent callers (several scrapes, the status page, the autoscaler) share the
collection that is running instead of each hitting the broker, and a caller that accepts a
snapshot a little old (`max_age`, the HTTP endpoints) shares the last one too. A
backend that fails is reported in the snapshot (`*_up` false, an error string) and
never raises; a broker read that does not finish within `broker.timeout_seconds`
(whatever stalls: DNS, a TLS handshake, a half-open connection, a sleeping Redis, every
sentinel down) is abandoned to its own thread and reported as down. The deadline is
timeout_seconds plus the duration of the last good read (a broker as fast as it was is
never reported down); the first read, and the first after a failure, is preceded by a
ping (`BrokerReader.ping`) that must answer within timeout_seconds.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from typing import Protocol, TypeVar

from batchctl.claims import Claim, StoreError
from batchctl.claims.store import ClaimReader
from batchctl.config import Config
from batchctl.log import RepeatedWarning, get_logger
from batchctl.redact import redact_url, scrub
from exporter.broker.protocol import BrokerRead, BrokerReader
from exporter.live import Live
from exporter.snapshot import BrokerDurability, Deployment, Snapshot
from exporter.stats import IncrementalStats, select_queues

log = get_logger("batchctl.collect")
T = TypeVar("T")
# The read after start-up (or after a failure) follows a PING answered within
# timeout_seconds, and may take this much longer: it reads every list's ends and runs
# discovery. Stalls inside it are still cut at the socket level after timeout_seconds.
FIRST_READ_SECONDS = 10.0


class KubeSource(Protocol):
    """What the source needs from the Deployment cache (exporter/kube/informer.py)."""

    def state(self) -> KubeStateLike: ...


class KubeStateLike(Protocol):
    @property
    def deployments(self) -> dict[str, Deployment]: ...
    @property
    def up(self) -> bool: ...
    @property
    def error(self) -> str | None: ...


class BrokerTimeout(TimeoutError):
    """The broker did not answer within broker.timeout_seconds."""


# redis-py's repr of a client, as its Sentinel errors print it: keep only host and port
# (other brokers' error texts never match).
_CLIENT_REPR = re.compile(r"<redis\.client\.Redis\(<.*?host=([^,]+),port=(\d+),.*?\)>\)>\)>")
MAX_ERROR = 500


def _safe_error(exc: BaseException, url: str) -> str:
    # Broker error texts name host and port at most; scrub the URL and secrets anyway.
    text = _CLIENT_REPR.sub(r"\1:\2", f"{type(exc).__name__}: {exc}")
    text = scrub(text.replace(url, redact_url(url)))
    return text if len(text) <= MAX_ERROR else text[: MAX_ERROR - 1] + "…"


class _Bounded:
    """Runs one call at a time on a daemon thread and waits for it at most `timeout`.

    A call that overruns keeps its thread until its own socket timeouts end it (or a
    stuck DNS lookup returns); the next call first waits, within its own budget, for
    that one to finish, so two reads never overlap.
    """

    def __init__(self) -> None:
        self._pending: Future[object] | None = None

    def run(self, fn: Callable[[], T], timeout: float) -> T:
        deadline = time.monotonic() + timeout
        pending = self._pending
        if pending is not None and not pending.done():
            try:
                pending.exception(timeout=timeout)
            except TimeoutError:
                raise BrokerTimeout(
                    f"the broker has not answered the previous read for over {timeout:g}s"
                ) from None
        fut: Future[T] = Future()

        def work() -> None:
            if not fut.set_running_or_notify_cancel():
                return
            try:
                fut.set_result(fn())
            except BaseException as e:
                fut.set_exception(e)

        self._pending = fut  # type: ignore[assignment]
        threading.Thread(target=work, name="broker-read", daemon=True).start()
        try:
            return fut.result(timeout=max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            raise BrokerTimeout(
                f"no answer from the broker within {timeout:g}s (broker.timeout_seconds)"
            ) from None


class InProcessSource:
    """A `SnapshotSource` that reads the broker (and the Deployment cache) in this process."""

    def __init__(
        self,
        cfg: Config,
        reader: BrokerReader,
        kube: KubeSource | None = None,
        clock: Callable[[], float] = time.time,
        live: Live | None = None,
        claims: ClaimReader | None = None,
    ) -> None:
        self.cfg = cfg
        self.reader = reader
        # Where the claims come from when the broker read does not carry them (a store
        # other than the broker's own Redis: `claims.store`); None: read in the broker's
        # round trip.
        self.claims = claims
        self.kube = kube
        self.clock = clock
        # Adds events, progress and the last good snapshot to each one (exporter/live.py).
        self.live = live
        self.configured = {b.queue: b.deployment for b in cfg.batches}
        # The batches' and the other_queues' Deployments (their replicas are exported).
        self.watched = cfg.watched_deployments()
        # The broker's durability as last read (reads carry it), said once per change;
        # one-shot commands (`batchctl status`) set `quiet` and print it themselves.
        self.durability: BrokerDurability | None = None
        self.quiet = False
        self._said_durability: tuple[bool | None, str] | None = None
        self._lock = threading.Lock()
        self._inflight: Future[Snapshot] | None = None
        self._last: Snapshot | None = None
        self._last_done = float("-inf")  # time.monotonic() of the last finished collection
        self._discovered = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._refresher: threading.Thread | None = None
        self._bounded = _Bounded()
        # How long the last successful read took (None: none yet, or the last failed).
        self._read_seconds: float | None = None
        self.ever_succeeded = False
        # Set once the first collection attempt has finished, whatever its outcome: from
        # then on every request is answered from a real reading (a broker that is down
        # included, as celery_broker_up 0), which is what /readyz reports.
        self.attempted = threading.Event()
        # How many callers joined a collection already in flight (single-flight hits),
        # and how many were answered from the last finished one (within max_age).
        self.shared = 0
        self.reused = 0
        # QueueStats rebuilt only where the read changed (most batch queues are idle
        # most of the time), and the generation that says so.
        self._stats = IncrementalStats(self.configured, self.watched)
        # Read failures: logged when they start or change, then once a minute.
        self._failures = RepeatedWarning(log, "broker read failed")
        self._claim_failures = RepeatedWarning(log, "claim store read failed")

    # -- public -------------------------------------------------------------------

    def collect(self, max_age: float = 0.0) -> Snapshot:
        """A fresh snapshot, shared with any collection already under way; with
        `max_age` > 0, the last snapshot if it finished at most that many seconds ago."""
        with self._lock:
            fut = self._inflight
            last = self._last
            fresh = time.monotonic() - self._last_done <= max_age
            if fut is None and last is not None and max_age > 0 and fresh:
                self.reused += 1
                return last
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
                with self._lock:
                    self._last = snap
                    self._last_done = time.monotonic()
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
        if self.claims is not None:
            self.claims.close()
        self.reader.close()

    # -- internals ----------------------------------------------------------------

    def _discover(self) -> None:
        try:
            found = self.reader.discover()
            self._discovered = True
            log.debug("discovered queues", count=len(found.queues))
        except self.reader.errors as e:
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
            age = time.monotonic() - self._last_done
            if age >= interval:
                try:
                    self.collect()
                except Exception:  # collect() reports backends in the snapshot; anything
                    # else is a bug, logged, and must not end the refresh.
                    log.exception("background collection failed")
                age = 0.0
            wait = max(0.0, interval - age)

    def _read(self, now: float) -> tuple[BrokerRead, int]:
        """Discovery (until it first succeeds) and the read: the part that talks to the
        broker."""
        broker = self.cfg.broker
        if broker.discover_queues and not self._discovered:
            self._discover()
        names, dropped = select_queues(
            list(self.watched),
            self.reader.discovery.queues if broker.discover_queues else (),
            broker.max_queues,
        )
        claim_queues = list(self.configured) if self.claims is None else []
        read = self.reader.read(names, now, claim_queues, clock=self.clock)
        if read.durability is not None:
            self.durability = read.durability
            self._say_durability(read.durability)
        return read, dropped

    def _say_durability(self, d: BrokerDurability) -> None:
        if self._said_durability == (d.durable, d.detail):
            return
        self._said_durability = (d.durable, d.detail)
        if d.durable is False:
            (log.debug if self.quiet else log.warning)(
                "the broker keeps no data across a restart: claims and their history "
                "are not durable",
                persistence=d.detail,
                fix="turn on AOF (appendonly yes) or RDB save points in Redis",
            )
        elif d.durable is None:
            log.info("the broker's persistence is unknown", persistence=d.detail)

    def _collect_once(self) -> Snapshot:
        start = time.perf_counter()
        now = self.clock()
        kube_state = self.kube.state() if self.kube is not None else None
        deployments = {}
        if kube_state is not None:
            for queue, name in self.watched.items():
                dep = kube_state.deployments.get(name)
                if dep is not None:
                    deployments[queue] = dep
        common = {
            "taken_at": now,
            "kubernetes_up": kube_state.up if kube_state is not None else None,
            "kubernetes_error": kube_state.error if kube_state is not None else None,
            "deployments": deployments,
            "durability": self.durability,
        }
        timeout = self.cfg.broker.timeout_seconds
        try:
            if self._read_seconds is None:
                # Nothing read yet, or the last read failed: is the broker there at all?
                # Within timeout_seconds; then the (possibly large) read may take longer.
                self._bounded.run(self.reader.ping, timeout)
                budget = timeout + FIRST_READ_SECONDS
            else:
                # A broker as fast as it was last time is never "down".
                budget = timeout + self._read_seconds
            t0 = time.monotonic()
            read, dropped = self._bounded.run(lambda: self._read(now), budget)
            self._read_seconds = time.monotonic() - t0
        except Exception as e:
            self._read_seconds = None
            # Always answer the scrape: a broker that is down (or answers something we
            # cannot read) shows as celery_broker_up 0 with the error, never as a 500.
            error = _safe_error(e, self.cfg.broker.url)
            if isinstance(e, (*self.reader.errors, OSError)):
                self._failures.failed(error, broker=self.reader.safe_url)
            else:
                log.exception("unexpected broker reply", broker=self.reader.safe_url)
            return Snapshot(
                duration_seconds=time.perf_counter() - start,
                broker_up=False,
                broker_error=error,
                **common,  # type: ignore[arg-type]
            )
        common["durability"] = self.durability  # as checked by this read
        claims, claims_error = self._claims(read)
        by_name = {d.name: d for d in deployments.values()} if kube_state is not None else None
        queues = self._stats.build(read, now, by_name)
        self._failures.recovered("broker read recovered", broker=self.reader.safe_url)
        self.ever_succeeded = True
        skipped = self.reader.discovery.skipped if self.cfg.broker.discover_queues else {}
        return Snapshot(
            duration_seconds=time.perf_counter() - start,
            broker_up=True,
            queues=queues,
            broker_memory_used_bytes=read.used_memory,
            broker_memory_max_bytes=read.max_memory,
            broker_alarms=read.alarms,
            queues_dropped=dropped,
            queues_unpublished=tuple(read.unpublished),
            queues_skipped=dict(skipped),
            generation=self._stats.generation,
            claims=claims,
            claims_error=claims_error,
            **common,  # type: ignore[arg-type]
        )

    def _claims(self, read: BrokerRead) -> tuple[Mapping[str, Claim], str | None]:
        """The configured batches' claims: from the broker read, or from the claim store
        (then an error leaves them unknown, said in the snapshot: the autoscaler holds)."""
        if self.claims is None:
            return read.claims, None
        try:
            found = self.claims.all(self.configured)
        except StoreError as e:
            self._claim_failures.failed(str(e))
            return {}, str(e)
        self._claim_failures.recovered("claim store read recovered")
        return {q: c for q, c in found.items() if c is not None}, None
