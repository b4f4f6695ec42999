"""`batchctl exporter`: serve /metrics, /status and the snapshot API."""

from __future__ import annotations

import sys

import click

from batchctl.cli.common import host_port
from batchctl.cli.options import EXIT_USAGE, config_error, config_option, load_or_exit
from batchctl.config import ConfigError


@click.command("exporter")
@config_option
@click.option(
    "--listen",
    "-l",
    default=None,
    callback=host_port("0.0.0.0:9808"),
    help="HOST:PORT to serve on (default from the config: 0.0.0.0:9808).",
)
@click.option(
    "--web.config.file",
    "web_config",
    default=None,
    type=click.Path(dir_okay=False),
    help="TLS and basic auth for the endpoints, in the Prometheus exporter-toolkit "
    "format (tls_server_config, basic_auth_users with bcrypt hashes).",
)
def exporter_command(config_path: str | None, listen: str | None, web_config: str | None) -> None:
    """Serve Prometheus metrics for the Celery batch queues.

    \b
    Endpoints:
      /metrics           Prometheus exposition (collected at scrape time)
      /status            a status page, one row per batch
      /api/v1/snapshot   the same snapshot as JSON
      /healthz /readyz   liveness and readiness probes

    The broker URL may also come from BATCHCTL_BROKER_URL; its password is
    never logged.

    \b
      BATCHCTL_BROKER_URL=redis://:PASSWORD@redis:6379/0 batchctl exporter
      batchctl exporter -c batchctl.yml -l 127.0.0.1:9808
      batchctl exporter -c batchctl.yml --web.config.file web.yml   (TLS, basic auth)
    """
    from exporter.http.webconfig import WebConfigError, load_web_config
    from exporter.runtime import run

    cfg = load_or_exit(config_path)
    try:
        web = load_web_config(web_config) if web_config else None
    except WebConfigError as e:
        click.echo(e.render(), err=True)
        sys.exit(EXIT_USAGE)
    try:
        run(cfg, listen, web)
    except ConfigError as e:
        config_error(e)
    except OSError as e:  # the port is taken, or not ours to bind
        click.echo(f"cannot listen on {listen or cfg.exporter.listen}: {e.strerror}", err=True)
        sys.exit(EXIT_USAGE)
