"""`batchctl exporter`: serve /metrics, /status and the snapshot API."""

from __future__ import annotations

import sys

import click

from batchctl.cli import config_option, load_or_exit, wait_for_shutdown


@click.command("exporter")
@config_option
@click.option(
    "--listen",
    "-l",
    default=None,
    help="HOST:PORT to serve on (default from the config: 0.0.0.0:9808).",
)
def exporter_command(config_path: str | None, listen: str | None) -> None:
    """Serve Prometheus metrics for the Celery batch queues.

    \b
    Endpoints:
      /metrics           Prometheus exposition (collected at scrape time)
      /status            a status page, one row per batch
      /api/v1/snapshot   the same snapshot as JSON
      /healthz /readyz   liveness and readiness probes

    The broker URL may also come from BATCHCTL_BROKER_URL; its password is
    never logged.
    """
    from batchctl.config import ConfigError
    from exporter.runtime import start_exporter

    cfg = load_or_exit(config_path)
    if listen is not None:
        from batchctl.config import ExporterConfig

        try:
            ExporterConfig(listen=listen)
        except Exception:
            raise click.BadParameter(
                "expected HOST:PORT, e.g. 0.0.0.0:9808", param_hint="--listen"
            ) from None
    try:
        running = start_exporter(cfg, listen)
    except ConfigError as e:
        click.echo(e.render(), err=True)
        sys.exit(2)
    except OSError as e:  # the port is taken, or not ours to bind
        click.echo(f"cannot listen on {listen or cfg.exporter.listen}: {e.strerror}", err=True)
        sys.exit(2)
    wait_for_shutdown()
    running.stop()
