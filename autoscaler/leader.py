"""Leader election on a coordination.k8s.io/v1 Lease: one acting autoscaler among replicas.

The official client's `kubernetes.leaderelection` does the election (create or take the
Lease, renew it every `retry_period`, give up after `renew_deadline`); this module wraps
it for what it leaves to the caller (docs/design.md, "Kubernetes API"):

- It does not stop the caller's work when the lease is lost. `is_leader()` is the gate
  every scale write passes: true only while this replica holds the Lease and its last
  successful renewal is younger than `renew_deadline`. Another replica may take the
  Lease only `lease_duration` after it last saw it change, so writes stop before
  another writer can start, provided lease_duration - renew_deadline covers a request
  in flight (the config checks it against kubernetes.request_timeout_seconds).
- Its configuration errors call `sys.exit` inside its thread: our config validates the
  same rules first (LeaderElectionConfig), and a SystemExit that still happens is
  caught and reported, never taken as the process' exit.
- Its API calls carry no timeout: ours pass `kubernetes.request_timeout_seconds`.
- It keeps no state of the caller's. The facts the policy needs across ticks (our last
  change per batch and when) ride in the Lease's annotation `STATE_ANNOTATION`, so the
  next leader finds them (autoscaler/handover.py encodes them).
- The leader's latest decisions ride along at every renewal in `DECISIONS_ANNOTATION`
  (batchctl/decisions.py, compact), and a standby keeps the copy it reads at each of its
  attempts: its /api/v1/decisions serves the leader's, so the status page of either pod
  shows what the autoscaler decided.
- On shutdown a leader gives the Lease up (holder cleared) so the standby takes over at
  its next retry instead of waiting out the lease.
- Its loops have no way out (a follower retries for ever): after `stop()` the next
  attempt raises `_Stopped`, which ends them, and `stop()` waits for the thread. A thread
  left inside an API call when the interpreter exits aborts the process on Python 3.11:
  the client's calls run through pydantic-core (Rust) frames, which the pthread_exit
  that ends daemon threads at finalization cannot unwind (SIGABRT; CPython gh-87135).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from kubernetes import client
from kubernetes.leaderelection import electionconfig
from kubernetes.leaderelection.leaderelection import LeaderElection
from kubernetes.leaderelection.resourcelock.leaselock import LeaseLock

from autoscaler.leadership import NotLeader
from batchctl.config import LeaderElectionConfig
from batchctl.kube import client_secrets, describe_error
from batchctl.log import get_logger

log = get_logger("batchctl.leader")

STATE_ANNOTATION = "batchctl.io/autoscaler-state"
DECISIONS_ANNOTATION = "batchctl.io/autoscaler-decisions"


class _Stopped(Exception):
    """stop() was called: ends the library's acquire and renew loops from inside."""


def default_identity(env: dict[str, str] | None = None) -> str:
    """$POD_NAME in a pod (the Downward API), else host name and process id."""
    env = dict(os.environ) if env is None else env
    return env.get("POD_NAME") or f"{socket.gethostname()}-{os.getpid()}"


class _Timed:
    """The generated API with every call bounded by a timeout (the library sets none)."""

    def __init__(self, api: client.CoordinationV1Api, timeout: float) -> None:
        self._api = api
        self._timeout = timeout

    def __getattr__(self, name: str) -> Callable[..., Any]:
        call = getattr(self._api, name)
        return lambda *a, **kw: call(*a, _request_timeout=self._timeout, **kw)


class _Lock(LeaseLock):
    """The library's LeaseLock, serialised, on our client, and carrying our annotation."""

    def __init__(self, elector: LeaderElector, name: str, namespace: str, identity: str) -> None:
        # LeaseLock builds a CoordinationV1Api on the global default client: replace it.
        super().__init__(name, namespace, identity)
        self.api_instance = _Timed(  # type: ignore[assignment]
            client.CoordinationV1Api(elector.api_client), elector.timeout
        )
        self.elector = elector

    # The library catches only ApiException; a connection error would end its run() and
    # with it the leadership at once. One failed attempt is all it is: the library
    # retries every retry_period until renew_deadline.

    def get(self, name: str, namespace: str) -> tuple[bool, Any]:
        try:
            found = super().get(name, namespace)
        except Exception as e:
            self.elector._attempt_failed(e)
            return False, e
        ref = self.lease_reference
        if found[0] and ref is not None and ref.metadata is not None:
            # What the holder decided last (a standby serves it at /api/v1/decisions).
            value = (ref.metadata.annotations or {}).get(DECISIONS_ANNOTATION)
            self.elector._leader_decisions = value if isinstance(value, str) else None
        return found  # type: ignore[no-any-return]

    def create(self, name: str, namespace: str, election_record: Any) -> bool:
        return self._write(lambda: super(_Lock, self).create(name, namespace, election_record))

    def update(self, name: str, namespace: str, updated_record: Any) -> bool:
        ref = self.lease_reference
        state = self.elector._state_text
        decided = self.elector._decisions_text
        if ref is not None and self.elector._leading:
            ours = {}
            if state is not None:
                ours[STATE_ANNOTATION] = state
            if decided is not None:
                ours[DECISIONS_ANNOTATION] = decided
            if ours:
                meta = ref.metadata or client.V1ObjectMeta()
                meta.annotations = {**(meta.annotations or {}), **ours}
                ref.metadata = meta
        return self._write(lambda: super(_Lock, self).update(name, namespace, updated_record))

    def _write(self, call: Callable[[], Any]) -> bool:
        """One create or update of the Lease; a success holds it for us now."""
        if self.elector.stopping:
            return False
        try:
            ok = bool(call())
        except Exception as e:
            self.elector._attempt_failed(e)
            return False
        if ok:
            self.elector._renewed()
        return ok


class _Election(LeaderElection):  # type: ignore[misc]
    """One attempt of the library's election whose reads and writes our lock serialises,
    and which ends (`_Stopped`) at its first attempt after `stop` is set."""

    def __init__(self, config: Any, mutex: threading.RLock, stop: threading.Event) -> None:
        super().__init__(config)
        self._mutex = mutex
        self._stop = stop

    def try_acquire_or_renew(self) -> bool:
        if self._stop.is_set():
            raise _Stopped
        # Whole read-compute-write under the mutex, so that a state write in between
        # never makes the renewal's replace fail with a stale resourceVersion.
        with self._mutex:
            return bool(super().try_acquire_or_renew())


class LeaderElector:
    """Runs the election in a daemon thread; `is_leader()` gates every write."""

    def __init__(
        self,
        cfg: LeaderElectionConfig,
        namespace: str,
        api_client: client.ApiClient,
        timeout: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[bool], None] | None = None,
    ) -> None:
        self.cfg = cfg
        self.namespace = namespace
        self.api_client = api_client
        self.timeout = timeout
        self.identity = cfg.identity or default_identity()
        self._clock = clock
        self._on_change = on_change
        self._secrets = client_secrets(api_client)
        self._mutex = threading.RLock()
        self._lock = _Lock(self, cfg.lease_name, namespace, self.identity)
        self._leading = False
        self._last_renewal = float("-inf")
        self._state_text: str | None = None
        # Our latest decisions (written at renewals), and the holder's as last read.
        self._decisions_text: str | None = None
        self._leader_decisions: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: str | None = None  # the last failure of the election itself
        self.transitions = 0

    # ------------------------------------------------------------------ public

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="leader-election", daemon=True)
            self._thread.start()

    def is_leader(self) -> bool:
        """True while writes are safe: we hold the Lease and renewed it recently enough."""
        return (
            self._leading
            and not self.stopping
            and self._clock() - self._last_renewal < self.cfg.renew_deadline_seconds
        )

    def read_state(self) -> str | None:
        """The state annotation as the Lease holds it now (None: none yet)."""
        with self._mutex:
            api = self._lock.api_instance
            lease = api.read_namespaced_lease(self.cfg.lease_name, self.namespace)
        annotations = (lease.metadata.annotations or {}) if lease.metadata else {}
        value = annotations.get(STATE_ANNOTATION)
        return value if isinstance(value, str) else None

    def write_state(self, text: str) -> None:
        """Store `text` in the Lease's state annotation now. Raises NotLeader when we do
        not hold the Lease, ApiException or urllib3 errors when the API fails."""
        with self._mutex:
            if not self.is_leader():
                raise NotLeader(f"{self.identity} does not hold lease {self.cfg.lease_name}")
            api = self._lock.api_instance
            lease = api.read_namespaced_lease(self.cfg.lease_name, self.namespace)
            holder = lease.spec.holder_identity if lease.spec else None
            if holder != self.identity:
                raise NotLeader(f"lease {self.cfg.lease_name} is held by {holder}")
            meta = lease.metadata or client.V1ObjectMeta()
            meta.annotations = {**(meta.annotations or {}), STATE_ANNOTATION: text}
            lease.metadata = meta
            self._lock.lease_reference = api.replace_namespaced_lease(
                self.cfg.lease_name, self.namespace, lease
            )
            self._state_text = text

    def publish_decisions(self, text: str) -> None:
        """Our latest decisions (batchctl.decisions.encode_compact), carried by the next
        renewal of the Lease: no API call of its own."""
        self._decisions_text = text

    def leader_decisions(self) -> str | None:
        """The holder's decisions as this replica last read them from the Lease."""
        return self._leader_decisions

    def stop(self, release: bool = True) -> None:
        """Stop competing; a leader stops writing at once and, with `release`, clears the
        holder so that a standby takes over at its next retry. Returns once the election
        thread has ended: within retry_period_seconds plus a request in flight."""
        was_leader = self.is_leader()
        self._stop.set()
        self._set_leading(False)
        if release and was_leader:
            self._release()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(self.cfg.retry_period_seconds + self.timeout + 1.0)

    # ------------------------------------------------------------------ internals

    def _run(self) -> None:
        cfg = self.cfg
        while not self.stopping:
            try:
                config = electionconfig.Config(
                    self._lock,
                    cfg.lease_duration_seconds,
                    cfg.renew_deadline_seconds,
                    cfg.retry_period_seconds,
                    onstarted_leading=lambda: self._set_leading(True),
                    onstopped_leading=lambda: self._set_leading(False),
                )
                # Blocks while following, then while leading; returns once a renewal
                # failed for renew_deadline. Then we compete again.
                _Election(config, self._mutex, self._stop).run()
            except _Stopped:
                return
            except SystemExit as e:  # the library's reaction to a bad configuration
                self.error = f"leader election configuration refused: {e}"
                log.error("leader election stopped", error=self.error)
                self._set_leading(False)
                return
            except Exception as e:  # the thread must outlive any failure
                self.error = describe_error(e, self._secrets)
                log.warning("leader election failed; retrying", error=self.error)
            self._set_leading(False)
            self._stop.wait(cfg.retry_period_seconds)

    def _renewed(self) -> None:
        self._last_renewal = self._clock()
        self.error = None

    def _attempt_failed(self, exc: BaseException) -> None:
        error = describe_error(exc, self._secrets)
        if error != self.error:
            log.warning("lease request failed", error=error, identity=self.identity)
        self.error = error

    def _set_leading(self, leading: bool) -> None:
        if leading == self._leading:
            return
        self._leading = leading
        if leading:
            self.transitions += 1
            # A new term: our state is whatever the Lease holds, loaded by the caller.
            self._state_text = None
        log.info(
            "leadership " + ("acquired" if leading else "lost"),
            identity=self.identity,
            lease=self.cfg.lease_name,
            namespace=self.namespace,
        )
        if self._on_change is not None:
            self._on_change(leading)

    def _release(self) -> None:
        try:
            with self._mutex:
                api = self._lock.api_instance
                lease = api.read_namespaced_lease(self.cfg.lease_name, self.namespace)
                if lease.spec is None or lease.spec.holder_identity != self.identity:
                    return
                lease.spec.holder_identity = None
                # client-go's ReleaseOnCancel: an expired-looking lease, taken at once.
                lease.spec.lease_duration_seconds = 1
                api.replace_namespaced_lease(self.cfg.lease_name, self.namespace, lease)
            log.info("lease released", identity=self.identity, lease=self.cfg.lease_name)
        except Exception as e:  # best effort on the way out
            log.warning("could not release the lease", error=describe_error(e, self._secrets))
