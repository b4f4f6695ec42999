"""Wiring for `batchctl autoscaler`: a snapshot source, a backend, leader election, the
loop and its metrics; `--once` waits (bounded) for what it needs and says what did not
answer."""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import CollectorRegistry, ProcessCollector

from autoscaler.backends import Backend
from autoscaler.backends.dryrun import DryRunBackend
from autoscaler.claimkeeping import ClaimKeeper
from autoscaler.claimmirror import ClaimMirror, build_mirror
from autoscaler.leadership import Leadership
from autoscaler.loop import Autoscaler
from autoscaler.metrics import AutoscalerMetrics
from autoscaler.policy import Decision
from autoscaler.server import AutoscalerServer
from autoscaler.source import ExporterSource, SnapshotUnavailable
from batchctl.claims import Claim
from batchctl.config import Config, ConfigError
from batchctl.exitcodes import EXIT_OK, EXIT_UNREACHABLE
from batchctl.exitcodes import EXIT_REFUSED as EXIT_FAILED
from batchctl.log import get_logger
from batchctl.process import wait_for_shutdown
from batchctl.reasons import Reason
from exporter.runtime import build_source
from exporter.snapshot import SnapshotSource

BACKENDS = ("kubernetes", "local", "dry-run")
# Reasons that mean "could not decide": --once then exits non-zero.
UNDECIDED = (Reason.NO_DATA, Reason.REPLICAS_UNKNOWN)


log = get_logger("batchctl.autoscaler")


class DryRunClaims:
    """dry-run changes nothing, claims included: it says what it would do, once per
    claim (the claim stays as it is, so every tick would say it again)."""

    def __init__(self) -> None:
        self._said: set[tuple[str, str, float]] = set()

    def _once(self, event: str, queue: str, seen: Claim) -> None:
        key = (event, queue, seen.since)
        if key not in self._said:
            self._said.add(key)
            log.info(event, queue=queue, holder=seen.holder)

    def end_drain(self, queue: str, seen: Claim, now: float, detail: str) -> None:
        self._once("dry run: would end the drained claim", queue, seen)

    def note_expired(self, queue: str, seen: Claim, now: float) -> None:
        self._once("dry run: would record the expiry", queue, seen)

    def add_usage(self, queue: str, seen: Claim, replica_seconds: float) -> None:
        pass  # usage is bookkeeping: nothing to say every minute


def build_claims(cfg: Config, backend: str) -> tuple[ClaimKeeper, Callable[[], None]]:
    """Who writes the claims the autoscaler ends (drained), notes (expired) or adds usage
    to, and how to close it (the configured store, `claims.store`). The sidecar's only
    writes to it: one atomic change of one claim (a WATCH/MULTI on its Redis hash, an
    update of its Lease, a SQLite transaction) when a drain ends, a claim expires or
    about once a minute per claimed batch with replicas (usage); the exporter stays the
    one reader per pod."""
    if backend == "dry-run":
        return DryRunClaims(), lambda: None
    from batchctl.claims.service import store_for

    store = store_for(cfg)
    return store, store.close


class NotReady(Exception):
    """--once could not start: the message names what did not answer. `config`: it
    answered and refused us (a password): waiting longer will not help."""

    def __init__(self, message: str, config: bool = False) -> None:
        super().__init__(message)
        self.config = config


@dataclass(frozen=True)
class Options:
    backend: str
    listen: str = "0.0.0.0:9809"
    once: bool = False
    run_dir: Path | None = None
    # dry-run: start tracking our own replica counts at this value (no Kubernetes needed).
    assume_replicas: int | None = None


def build_backend(cfg: Config, opts: Options) -> Backend:
    """The backend called `opts.backend` (one of BACKENDS). Raises ConfigError."""
    if opts.backend == "local":
        from autoscaler.backends.local import LocalBackend

        if not cfg.autoscaler.local_app:
            # The config checks this for backend: local; --backend local must too.
            raise ConfigError(
                [
                    "autoscaler.local_app: required with the local backend (--backend local): "
                    "the Celery app its worker processes run, e.g. myproject.celery"
                ],
                "autoscaler",
            )

        where = opts.run_dir or Path(tempfile.mkdtemp(prefix="batchctl-workers-"))
        return LocalBackend.from_config(cfg, where)
    if opts.backend == "kubernetes":
        from autoscaler.backends.kubernetes import KubernetesBackend
        from autoscaler.leader import default_identity

        identity = cfg.autoscaler.leader_election.identity or default_identity()
        return KubernetesBackend(cfg, identity=identity)
    # Without Kubernetes (or told to assume a count) dry-run keeps counts of its own.
    track = opts.assume_replicas is not None or not cfg.kubernetes.enabled
    return DryRunBackend(
        [b.queue for b in cfg.batches], track=track, assume_replicas=opts.assume_replicas or 0
    )


def build_snapshot_source(cfg: Config, backend: str) -> SnapshotSource:
    """The exporter beside us (one observer per pod), or Redis read in this process for
    the local backend and when autoscaler.snapshot_url is null."""
    url = cfg.snapshot_url
    if backend == "local" or url is None:
        return build_source(cfg)
    # The exporter answers within the broker timeout (plus render time).
    return ExporterSource(url, timeout=2 * cfg.broker.timeout_seconds + 1)


def build_leadership(cfg: Config, backend: Backend) -> Leadership | None:
    """A started LeaderElector when leader election is on (the kubernetes backend's
    default: the backend in use, --backend included), else None (sole leader)."""
    if not cfg.autoscaler.leader_election_on(backend.name):
        return None
    from autoscaler.backends.kubernetes import KubernetesBackend
    from autoscaler.leader import LeaderElector

    if isinstance(backend, KubernetesBackend):
        api_client = backend.api_client
    else:  # dry-run with leader election asked for explicitly
        from batchctl.kube import new_api_client

        api_client = new_api_client(cfg.kubernetes)
    elector = LeaderElector(
        cfg.autoscaler.leader_election,
        cfg.kubernetes.namespace,
        api_client,
        cfg.kubernetes.request_timeout_seconds,
    )
    elector.start()
    return elector


def _mirror(
    cfg: Config, leadership: Leadership | None, backend: str
) -> tuple[ClaimMirror | None, Callable[[], None]]:
    from batchctl.kube import KubeConfigError

    try:
        return build_mirror(cfg, leadership, backend)
    except KubeConfigError as e:
        raise ConfigError(
            [f"claims.store: kubernetes: {e}; set kubernetes.kubeconfig (or KUBECONFIG)"],
            "claims",
        ) from None


def wait_until_ready(
    cfg: Config,
    source: SnapshotSource,
    leadership: Leadership | None,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Block until a snapshot with the broker read (and the Deployments listed, with
    Kubernetes) is available and we lead; NotReady past autoscaler.startup_timeout_seconds."""
    deadline = clock() + cfg.autoscaler.startup_timeout_seconds
    why = "nothing answered yet"
    while True:
        try:
            snap = source.collect()
            if not snap.broker_up and (snap.broker_error or "").startswith("AuthenticationError"):
                raise NotReady(
                    f"the broker refused the credentials of broker.url: {snap.broker_error}",
                    config=True,
                )
            if not snap.broker_up:
                why = f"the broker did not answer: {snap.broker_error}"
            elif cfg.kubernetes.enabled and snap.kubernetes_up is not True:
                why = "the Kubernetes API has not listed the Deployments: " + (
                    snap.kubernetes_error or "no answer yet"
                )
            elif leadership is not None and not leadership.is_leader():
                why = f"another replica holds lease {cfg.autoscaler.leader_election.lease_name}"
            else:
                return
        except SnapshotUnavailable as e:
            why = str(e)
        if clock() >= deadline:
            raise NotReady(f"not ready after {cfg.autoscaler.startup_timeout_seconds:g}s: {why}")
        time.sleep(0.2)


def once_exit_code(decisions: list[Decision], unapplied: list[str]) -> int:
    """0 done; 1 a change was decided but not applied (a write failed, the lease was
    lost); 3 nothing could be decided (no data for any batch)."""
    if decisions and all(d.reason in UNDECIDED for d in decisions):
        return EXIT_UNREACHABLE
    return EXIT_FAILED if unapplied else EXIT_OK


def run(
    cfg: Config, opts: Options, on_decisions: Callable[[list[Decision]], None] | None = None
) -> int:
    """Run the loop until SIGTERM/SIGINT, serving /metrics, /healthz and /readyz on
    `opts.listen`; with `once`, one tick whose decisions go to `on_decisions`. Returns
    the exit code. Raises ConfigError, OSError (the port cannot be bound), NotReady
    (--once)."""
    backend = build_backend(cfg, opts)
    source: SnapshotSource | None = None
    leadership: Leadership | None = None
    claims, close_claims = build_claims(cfg, opts.backend)
    stops: list[Callable[[], None]] = []
    try:
        source = build_snapshot_source(cfg, opts.backend)
        leadership = build_leadership(cfg, backend)
        scaler = Autoscaler(
            cfg,
            source,
            backend,
            leadership=leadership,
            claims=claims,
        )
        if opts.once:
            wait_until_ready(cfg, source, leadership)
            try:
                decisions = scaler.tick()
            except Exception:  # a bug, not a backend: logged with its trace, exit 1
                log.exception("tick failed")
                return EXIT_FAILED
            if on_decisions is not None:
                on_decisions(decisions)
            return once_exit_code(decisions, scaler.unapplied)
        # Claims in Leases: the leader copies their events into the history ring.
        _, stop_mirror = _mirror(cfg, leadership, opts.backend)
        stops.append(stop_mirror)
        registry = CollectorRegistry()
        ProcessCollector(registry=registry)
        registry.register(AutoscalerMetrics(scaler))
        server = AutoscalerServer(scaler, registry)
        server.listen(opts.listen)
        server.serve_in_thread()
        thread = threading.Thread(target=scaler.run, name="autoscaler", daemon=True)
        thread.start()
        wait_for_shutdown()
        scaler.stop()
        thread.join(timeout=30)
        server.shutdown()
        return EXIT_OK
    finally:
        for stop in stops:
            stop()
        if leadership is not None:
            leadership.stop()
        backend.close()
        close_claims()
        if source is not None:
            source.stop()
