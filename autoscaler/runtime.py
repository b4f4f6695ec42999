"""Wiring for `batchctl autoscaler`: a snapshot source, a backend, the loop, its metrics."""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from prometheus_client import CollectorRegistry, ProcessCollector

from autoscaler.backends import Backend
from autoscaler.backends.dryrun import DryRunBackend
from autoscaler.loop import Autoscaler
from autoscaler.metrics import AutoscalerMetrics
from autoscaler.policy import Decision
from autoscaler.server import AutoscalerServer
from batchctl.config import Config
from batchctl.process import wait_for_shutdown
from exporter.runtime import build_source

BACKENDS = ("kubernetes", "local", "dry-run")


def build_backend(cfg: Config, name: str, run_dir: Path | None = None) -> Backend:
    """The backend called `name` (one of BACKENDS). Raises ConfigError."""
    if name == "local":
        from autoscaler.backends.local import LocalBackend

        where = run_dir or Path(tempfile.mkdtemp(prefix="batchctl-workers-"))
        return LocalBackend.from_config(cfg, where)
    if name == "kubernetes":
        from autoscaler.backends.kubernetes import KubernetesBackend

        return KubernetesBackend(cfg)
    return DryRunBackend()


def run(
    cfg: Config,
    backend_name: str,
    listen: str,
    *,
    once: bool = False,
    run_dir: Path | None = None,
    on_decisions: Callable[[list[Decision]], None] | None = None,
) -> None:
    """Run the loop until SIGTERM/SIGINT, serving /metrics, /healthz and /readyz on
    `listen`; with `once`, one tick whose decisions go to `on_decisions`. Raises
    ConfigError, OSError (the port cannot be bound)."""
    backend = build_backend(cfg, backend_name, run_dir)
    try:
        source = build_source(cfg)
    except BaseException:
        backend.close()
        raise
    scaler = Autoscaler(cfg, source, backend)
    try:
        if once:
            decisions = scaler.tick()
            if on_decisions is not None:
                on_decisions(decisions)
            return
        registry = CollectorRegistry()
        ProcessCollector(registry=registry)
        registry.register(AutoscalerMetrics(scaler))
        server = AutoscalerServer(scaler, registry)
        server.listen(listen)
        server.serve_in_thread()
        thread = threading.Thread(target=scaler.run, name="autoscaler", daemon=True)
        thread.start()
        wait_for_shutdown()
        scaler.stop()
        thread.join(timeout=30)
        server.shutdown()
    finally:
        backend.close()
        source.stop()
