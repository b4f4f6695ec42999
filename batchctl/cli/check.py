"""`batchctl config check [FILE]`: validate a config file before deploying it."""

from __future__ import annotations

import os

import click

from batchctl.cli.options import EXIT_USAGE, Printer, load_or_exit, output_option
from batchctl.redact import redact_url


@click.group("config")
def config_group() -> None:
    """Check the configuration file."""


@config_group.command("check")
@click.argument("file", type=click.Path(dir_okay=False), required=False)
@output_option
def config_check(file: str | None, output: str) -> None:
    """Validate FILE (default: $BATCHCTL_CONFIG); print every problem with its key path
    and exit 2 if any."""
    out = Printer.of(output)
    path = file or os.environ.get("BATCHCTL_CONFIG") or None
    if path is None:
        out.fail("no file to check: give FILE or set BATCHCTL_CONFIG", EXIT_USAGE)
    cfg = load_or_exit(path, out)
    broker = redact_url(cfg.broker.url)
    out.data(
        {"file": path, "ok": True, "batches": [b.queue for b in cfg.batches], "broker": broker},
        f"{path}: OK ({len(cfg.batches)} batches, broker {broker})",
    )
