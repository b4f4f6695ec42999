"""Wiring: build the readers, the collector and the HTTP app from a Config."""

from __future__ import annotations

from dataclasses import dataclass

from batchctl.config import Config, ConfigError
from batchctl.log import get_logger
from exporter.broker import BrokerReader
from exporter.collect import Collector, KubeSource
from exporter.server import ExporterApp

log = get_logger("batchctl.exporter")


@dataclass
class Running:
    collector: Collector
    app: ExporterApp
    host: str
    port: int
    kube: object | None

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}"

    def stop(self) -> None:
        self.app.shutdown()
        self.collector.stop()
        stop = getattr(self.kube, "stop", None)
        if stop is not None:
            stop()
        self.collector.reader.close()


def build_collector(cfg: Config) -> tuple[Collector, object | None]:
    kube: KubeSource | None = None
    if cfg.kubernetes.enabled:
        # Imported here: the Kubernetes client is slow to import and optional at run time.
        from batchctl.kube import KubeConfigError
        from exporter.informer import DeploymentCache

        try:
            cache = DeploymentCache(cfg.kubernetes, [b.deployment for b in cfg.batches])
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
    collector = Collector(cfg, BrokerReader(cfg.broker), kube)
    collector.start()
    return collector, kube


def start_exporter(cfg: Config, listen: str | None = None) -> Running:
    """Start collecting and serving HTTP in background threads."""
    collector, kube = build_collector(cfg)
    app = ExporterApp(cfg, collector)
    host, port = app.listen(listen or cfg.exporter.listen)
    app.serve_in_thread()
    log.info(
        "exporter listening",
        url=f"http://{host}:{port}",
        broker=collector.reader.safe_url,
        kubernetes=cfg.kubernetes.enabled,
        batches=[b.queue for b in cfg.batches],
    )
    return Running(collector, app, host, port, kube)
