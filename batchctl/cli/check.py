"""`batchctl config check FILE`: validate a config file before deploying it."""

from __future__ import annotations

import click

from batchctl.cli.options import load_or_exit
from batchctl.redact import redact_url


@click.group("config")
def config_group() -> None:
    """Check the configuration file."""


@config_group.command("check")
@click.argument("file", type=click.Path(dir_okay=False))
def config_check(file: str) -> None:
    """Validate FILE; print every problem with its key path and exit 2 if any."""
    cfg = load_or_exit(file)
    click.echo(f"{file}: OK ({len(cfg.batches)} batches, broker {redact_url(cfg.broker.url)})")
