"""The autoscaler's loop over a real Redis with a backend that records, and its sidecar
HTTP server in this process."""

from __future__ import annotations

import threading
from collections.abc import Mapping

import redis
from prometheus_client import CollectorRegistry

from autoscaler.backends import ScaleNote
from autoscaler.backends.dryrun import DryRunBackend
from autoscaler.loop import Autoscaler
from autoscaler.metrics import AutoscalerMetrics
from autoscaler.policy import Reason
from autoscaler.server import AutoscalerServer
from batchctl.config import Config, parse_config
from exporter.broker.redis.reader import RedisReader
from exporter.collect import InProcessSource
from exporter.snapshot import Snapshot
from tests.support.config import config_for


class RecordingBackend(DryRunBackend):
    """The dry-run backend, remembering what it was asked to do, with fixed replicas; it
    stands for a backend that acts (its decisions are shown as done, not "would")."""

    name = "recording"

    def __init__(self, replicas: dict[str, int]) -> None:
        self.replicas = replicas
        self.calls: list[tuple[str, int]] = []
        self.notes: list[ScaleNote | None] = []

    def observed(self) -> dict[str, tuple[int, int]]:
        return {q: (n, n) for q, n in self.replicas.items()}

    def set_replicas(self, queue: str, n: int, note: ScaleNote | None = None) -> None:
        self.calls.append((queue, n))
        self.notes.append(note)
        self.replicas[queue] = n


class FixedSource:
    """A snapshot source that answers whatever snapshot `snap` holds now (the loop's input);
    a test changes `snap` between ticks."""

    def __init__(self, snap: Snapshot) -> None:
        self.snap = snap

    def collect(self) -> Snapshot:
        return self.snap

    def stop(self) -> None:
        pass


def local_config(url: str, queue: str, batch: Mapping[str, object], **sections: object) -> Config:
    """One batch `queue` (Deployment celery-<queue>) with the `batch` keys, no cluster,
    no sidecar, and the local backend running the demo app's workers (concurrency 2,
    ticks of 0.5 s); `sections` replace whole sections (events, broker keys...)."""
    raw: dict[str, object] = {
        "broker": {"url": url},
        "kubernetes": {"enabled": False},
        "exporter": {"autoscaler_url": None},
        "batches": [{"queue": queue, "deployment": f"celery-{queue}", **batch}],
        "autoscaler": {
            "backend": "local",
            "local_app": "batchctl.demo.tasks",
            "local_concurrency": 2,
            "interval_seconds": 0.5,
        },
    }
    raw.update(sections)
    return parse_config(raw, env={})


def dry_run_config(url: str, **autoscaler: object) -> Config:
    """batch0 and batch1 on `url`, the dry-run backend, `autoscaler` keys as given."""
    return config_for(url, autoscaler={"backend": "dry-run", **autoscaler})


def scaler_for(
    cfg: Config, client: redis.Redis, backend: RecordingBackend, **kw: object
) -> Autoscaler:
    collector = InProcessSource(cfg, RedisReader(cfg.broker))
    return Autoscaler(cfg, collector, backend, **kw)  # type: ignore[arg-type]


def reasons(a: Autoscaler) -> dict[str, Reason]:
    """queue -> the reason of the loop's last decision."""
    return {d.queue: d.reason for d in a.last_decisions}


def make(url: str, source_cls: type[InProcessSource] = InProcessSource, **kw: object) -> Autoscaler:
    """A loop over batch0 and batch1 at 0 replicas, ticking every 0.1 s once run."""
    cfg = dry_run_config(url, interval_seconds=0.1)
    source = source_cls(cfg, RedisReader(cfg.broker))
    return Autoscaler(cfg, source, RecordingBackend({"batch0": 0, "batch1": 0}), **kw)  # type: ignore[arg-type]


class Served:
    """The sidecar's HTTP server for `scaler` on a free loopback port (`url`); the loop
    runs once `thread` is started. close() stops both."""

    def __init__(self, scaler: Autoscaler) -> None:
        registry = CollectorRegistry()
        registry.register(AutoscalerMetrics(scaler))
        self.scaler = scaler
        self.server = AutoscalerServer(scaler, registry)
        host, port = self.server.listen("127.0.0.1:0")
        self.url = f"http://{host}:{port}"
        self.server.serve_in_thread()
        self.thread = threading.Thread(target=scaler.run, daemon=True)

    def close(self) -> None:
        self.scaler.stop()
        if self.thread.is_alive():
            self.thread.join(10)
        self.server.shutdown()
