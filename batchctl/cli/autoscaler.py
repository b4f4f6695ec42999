"""`batchctl autoscaler`: the live scaling loop (the sidecar beside the exporter)."""

from __future__ import annotations

import sys
import tempfile
import threading
from pathlib import Path

import click

from batchctl.cli import config_option, load_or_exit, wait_for_shutdown


@click.command("autoscaler")
@config_option
@click.option(
    "--backend",
    type=click.Choice(["kubernetes", "local", "dry-run"]),
    default=None,
    help="Where replicas live (default from autoscaler.backend in the config).",
)
@click.option(
    "--listen",
    "-l",
    default="0.0.0.0:9809",
    show_default=True,
    help="HOST:PORT for the autoscaler's own /metrics.",
)
@click.option("--once", is_flag=True, help="Run one tick, print the decisions and exit.")
@click.option(
    "--run-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="local backend: where worker logs go (default: a temporary directory).",
)
def autoscaler_command(
    config_path: str | None, backend: str | None, listen: str, once: bool, run_dir: Path | None
) -> None:
    """Scale claimed batches hands-off, within their caps, while guards are healthy.

    \b
    Each tick (autoscaler.interval_seconds) it reads the same snapshot the
    exporter serves, the claims and the guard queries, asks the pure policy
    (autoscaler/policy.py) for a replica count per batch, and applies changes:
      kubernetes  patch the Deployment's scale subresource
      local       start / warm-stop `celery worker` processes on this machine
      dry-run     log and export the decisions, change nothing
    Unclaimed batches are reported, never scaled up. A broker or API server that
    cannot be read makes the loop hold (reason no_data), never guess.
    """
    from prometheus_client import CollectorRegistry, ProcessCollector, start_http_server

    from autoscaler.loop import Autoscaler, Backend, DryRunBackend, KubernetesBackend, LocalBackend
    from autoscaler.metrics import AutoscalerMetrics
    from batchctl.config import ConfigError
    from exporter.runtime import build_collector

    cfg = load_or_exit(config_path)
    chosen = backend or cfg.autoscaler.backend
    impl: Backend
    try:
        if chosen == "local":
            from autoscaler.backends.local import LocalActuator

            where = run_dir or Path(tempfile.mkdtemp(prefix="batchctl-workers-"))
            actuator = LocalActuator.from_config(cfg, where)
            impl = LocalBackend(actuator, [b.queue for b in cfg.batches])
        elif chosen == "kubernetes":
            impl = KubernetesBackend(cfg)
        else:
            impl = DryRunBackend()
        collector, kube = build_collector(cfg)
    except ConfigError as e:
        click.echo(e.render(), err=True)
        sys.exit(2)
    scaler = Autoscaler(cfg, collector, impl)
    try:
        if once:
            for d in scaler.tick():
                arrow = f"{d.current} -> {d.desired}" if d.changed else f"{d.current}"
                click.echo(f"{d.queue:<12} {arrow:<8} {d.reason!s:<16} {d.detail}")
            return
        registry = CollectorRegistry()
        ProcessCollector(registry=registry)
        registry.register(AutoscalerMetrics(scaler))
        host, _, port = listen.rpartition(":")
        start_http_server(int(port), addr=host or "0.0.0.0", registry=registry)
        thread = threading.Thread(target=scaler.run, name="autoscaler", daemon=True)
        thread.start()
        wait_for_shutdown()
        scaler.stop()
        thread.join(timeout=30)
    finally:
        impl.close()
        collector.stop()
        stop = getattr(kube, "stop", None)
        if stop is not None:
            stop()
