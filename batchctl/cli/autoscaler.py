"""`batchctl autoscaler`: the live scaling loop (the sidecar beside the exporter)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from batchctl.cli.options import EXIT_USAGE, config_error, config_option, load_or_exit
from batchctl.config import ConfigError, ExporterConfig

if TYPE_CHECKING:
    from autoscaler.policy import Decision


def _listen(ctx: click.Context, param: click.Parameter, value: str) -> str:
    try:
        ExporterConfig(listen=value)  # the same HOST:PORT rule as the exporter's
    except ValueError:
        raise click.BadParameter("expected HOST:PORT, e.g. 0.0.0.0:9809") from None
    return value


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
    callback=_listen,
    help="HOST:PORT for the autoscaler's own /metrics, /healthz and /readyz.",
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
    (autoscaler/policy/) for a replica count per batch, and applies changes:
      kubernetes  patch the Deployment's scale subresource
      local       start / warm-stop `celery worker` processes on this machine
      dry-run     log and export the decisions, change nothing
    Unclaimed batches are reported, never scaled up. A broker or API server that
    cannot be read makes the loop hold (reason no_data), never guess.
    """
    from autoscaler.runtime import run
    from autoscaler.server import ListenError

    cfg = load_or_exit(config_path)

    def print_decisions(decisions: list[Decision]) -> None:
        for d in decisions:
            arrow = f"{d.current} -> {d.desired}" if d.changed else f"{d.current}"
            click.echo(f"{d.queue:<12} {arrow:<8} {d.reason!s:<16} {d.detail}")

    try:
        run(
            cfg,
            backend or cfg.autoscaler.backend,
            listen,
            once=once,
            run_dir=run_dir,
            on_decisions=print_decisions,
        )
    except ConfigError as e:
        config_error(e)
    except ListenError as e:  # the port is taken, or not ours to bind
        click.echo(f"cannot listen on {listen}: {e.strerror}", err=True)
        sys.exit(EXIT_USAGE)
