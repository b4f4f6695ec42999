"""Wiring: build the readers, the snapshot source and the HTTP app from a Config, and run."""

from __future__ import annotations

from dataclasses import dataclass

from batchctl.claims.service import reader_for
from batchctl.claims.store import ClaimReader
from batchctl.config import Config, ConfigError
from batchctl.log import get_logger
from batchctl.process import wait_for_shutdown
from exporter.broker import open_reader
from exporter.collect import InProcessSource, KubeSource
from exporter.events.model import HEARTBEAT_SETTLE_SECONDS
from exporter.http.server import ExporterApp
from exporter.http.webconfig import WebConfig
from exporter.live import Live

log = get_logger("batchctl.exporter")


@dataclass
class Running:
    source: InProcessSource
    app: ExporterApp
    host: str
    port: int

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}"

    def stop(self) -> None:
        self.app.shutdown()
        self.source.stop()


def build_source(
    cfg: Config, *, background: bool = True, refresh: float | None = None, events: bool = True
) -> InProcessSource:
    """The in-process snapshot source for `cfg`: the broker reader and, with
    kubernetes.enabled, a started Deployment cache. `background` also starts queue
    discovery, and with `refresh` a collection at once and every `refresh` seconds
    without scrapes. With `events` and events.enabled, a started consumer of Celery's
    events adds them to every snapshot (exporter/live.py). Raises ConfigError for an
    unusable cluster configuration."""
    kube: KubeSource | None = None
    if cfg.kubernetes.enabled:
        # Imported here: the Kubernetes client is slow to import and optional at run time.
        from batchctl.kube import KubeConfigError
        from exporter.kube.informer import DeploymentCache

        try:
            cache = DeploymentCache(cfg.kubernetes, list(cfg.watched_deployments().values()))
        except KubeConfigError as e:
            # A config problem, reported like the others: key, what is wrong, the fix.
            raise ConfigError(
                [
                    f"kubernetes: {e}; set kubernetes.kubeconfig (or KUBECONFIG), run "
                    "in a pod, or set kubernetes.enabled: false"
                ],
                "kubernetes",
            ) from None
        cache.start()
        kube = cache
    # Claims in the broker's Redis are read in the broker's round trip; any other store
    # is read through its own ClaimReader (the Leases: a watch).
    claims = None if cfg.claims.store == "redis" else _claim_reader(cfg)
    source = InProcessSource(
        cfg,
        open_reader(cfg.broker),
        kube,
        live=Live.from_config(cfg, events=events),
        claims=claims,
    )
    if background:
        source.start(refresh_interval=refresh)
    return source


def _claim_reader(cfg: Config) -> ClaimReader:
    from batchctl.kube import KubeConfigError

    try:
        return reader_for(cfg)
    except KubeConfigError as e:
        raise ConfigError(
            [
                f"claims.store: kubernetes: {e}; set kubernetes.kubeconfig (or KUBECONFIG), "
                "run in a pod, or set claims.store: redis"
            ],
            "claims",
        ) from None


def start_exporter(cfg: Config, listen: str | None = None, web: WebConfig | None = None) -> Running:
    """Start collecting and serving HTTP (HTTPS, basic auth: `web`) in background threads."""
    # The exporter collects by itself (ready without a scrape); the autoscaler's source
    # does not need to: its loop collects every tick.
    source = build_source(cfg, refresh=cfg.exporter.refresh_interval_seconds)
    app = ExporterApp(cfg, source, web=web)
    try:
        host, port = app.listen(listen or cfg.exporter.listen)
    except BaseException:
        source.stop()
        raise
    app.serve_in_thread()
    log.info(
        "exporter listening",
        url=f"{app.web.scheme}://{host}:{port}",
        broker=source.reader.safe_url,
        kubernetes=cfg.kubernetes.enabled,
        events=cfg.events.enabled,
        batches=[b.queue for b in cfg.batches],
    )
    return Running(source, app, host, port)


def run(cfg: Config, listen: str | None = None, web: WebConfig | None = None) -> None:
    """`batchctl exporter`: serve until SIGTERM/SIGINT. Raises ConfigError, OSError."""
    running = start_exporter(cfg, listen, web)
    wait_for_shutdown()
    running.stop()


def status_source(cfg: Config, events: bool = True) -> tuple[InProcessSource, str | None]:
    """A source for `batchctl status`: the configured batches only (no discovery SCAN),
    and a synced Deployment cache when replicas live in Kubernetes. When the cluster
    configuration is unusable, the source reads Redis alone and the second value says
    why replicas are unknown. With `events` (and events.enabled) Celery's events are
    consumed while it lives, and the first reading waits for the workers' heartbeats
    and queues (a heartbeat interval, and at most broker.timeout_seconds plus twice
    events.control_timeout_seconds more). Raises one of the reader's `errors`
    (redis.RedisError for Redis) when the broker does not answer."""
    broker = cfg.broker.model_copy(update={"discover_queues": False})
    kube_wanted = cfg.kubernetes.enabled and cfg.autoscaler.backend != "local"
    problem = None
    source = None
    if kube_wanted:
        try:
            source = build_source(
                cfg.model_copy(update={"broker": broker}), background=False, events=events
            )
        except ConfigError as e:
            problem = f"replicas unknown: {'; '.join(e.problems)}"
    if source is None:
        kubernetes = cfg.kubernetes.model_copy(update={"enabled": False})
        source = build_source(
            cfg.model_copy(update={"broker": broker, "kubernetes": kubernetes}),
            background=False,
            events=events,
        )
    source.quiet = True  # `status` prints it as a warning of its own
    try:
        # A wrong URL fails fast, before any wait for Kubernetes.
        source.reader.ping()
    except BaseException:
        source.stop()
        raise
    wait = getattr(source.kube, "wait_synced", None)
    if wait is not None:
        wait(cfg.kubernetes.request_timeout_seconds)
    if source.live is not None:
        source.live.settle(
            cfg.broker.timeout_seconds
            + HEARTBEAT_SETTLE_SECONDS
            + 2 * cfg.events.control_timeout_seconds
        )
    return source, problem
