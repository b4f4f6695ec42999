"""An exporter served in this process, one collection from a fresh source, and a fixed
snapshot for the renderers."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from batchctl.config import Config
from exporter.broker import open_reader
from exporter.collect import InProcessSource
from exporter.http.exposition import render_snapshot
from exporter.http.server import ExporterApp
from exporter.live import Live
from exporter.snapshot import Deployment, Snapshot
from exporter.stats import ListRead, build_queue_stats


@contextlib.contextmanager
def serving(cfg: Config, live: Live | None = None) -> Iterator[tuple[str, InProcessSource]]:
    """An exporter for `cfg` on a free loopback port (its broker's reader; with `live`,
    what the exporter adds to each reading, the events consumer included, as the
    exporter's runtime builds it: `Live.from_config`): its base URL and its source."""
    collector = InProcessSource(cfg, open_reader(cfg.broker), live=live)
    app = ExporterApp(cfg, collector)
    host, port = app.listen("127.0.0.1:0")
    app.serve_in_thread()
    try:
        yield f"http://{host}:{port}", collector
    finally:
        app.shutdown()
        if live is not None:
            live.stop()


def collect_once(cfg: Config) -> tuple[Snapshot, str]:
    """One snapshot of `cfg`'s broker from a fresh source (its broker up, asserted), and
    its /metrics text."""
    source = InProcessSource(cfg, open_reader(cfg.broker))
    try:
        snap = source.collect()
    finally:
        source.stop()
    assert snap.broker_up, snap.broker_error
    text = render_snapshot(snap, version="t", kubernetes_enabled=False, broker=cfg.broker.kind)
    return snap, text


def fixed_snapshot() -> Snapshot:
    """batch1: 700 waiting at priority 0 and 300 at 9, 8 unacked, the oldest 12.5 s old,
    1 MiB, its Deployment at 3 replicas (2 ready); batch0 empty; 2 queues dropped and 1
    skipped (a malformed binding). Taken at 0.0, in 4 ms."""
    lists = {
        ("batch1", 0): ListRead(700, "a", "b"),
        ("batch1", 9): ListRead(300, "c", "d"),
        ("batch0", 0): ListRead(0),
    }
    queues = build_queue_stats(
        ["batch0", "batch1"],
        {"batch0": "celery-batch0", "batch1": "celery-batch1"},
        (0, 3, 6, 9),
        lists,
        {"batch1": 8},
        {"batch1": 12.5},
        {"batch1": 1048576},
        {"celery-batch1": Deployment("celery-batch1", 3, 2)},
    )
    return Snapshot(
        taken_at=0.0,
        duration_seconds=0.004,
        broker_up=True,
        kubernetes_up=True,
        queues=queues,
        broker_memory_used_bytes=5000000,
        broker_memory_max_bytes=0,
        deployments={"batch1": Deployment("celery-batch1", 3, 2)},
        queues_dropped=2,
        queues_skipped={"escaped_name_taken": 0, "malformed_binding": 1, "name_too_long": 0},
    )
