"""`batchctl autoscaler`: the live scaling loop (the sidecar beside the exporter)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from batchctl.cli.options import (
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    config_error,
    config_option,
    load_or_exit,
)
from batchctl.config import ConfigError, ExporterConfig

if TYPE_CHECKING:
    from autoscaler.policy import Decision


def decision_table(decisions: list[Decision]) -> str:
    """One line per batch under a header, as `--once` prints it."""
    rows = [("QUEUE", "REPLICAS", "DESIRED", "ACTION", "REASON", "DETAIL")]
    for d in decisions:
        rows.append(
            (d.queue, str(d.current), str(d.desired), str(d.action), str(d.reason), d.detail)
        )
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(r[:5], widths, strict=True)) + "  " + r[5]
        for r in rows
    ).rstrip()


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
@click.option(
    "--once",
    is_flag=True,
    help="Wait for a first snapshot, run one tick, print the decisions and exit "
    "(0 done, 1 a scale write failed, 3 nothing answered or nothing could be decided).",
)
@click.option(
    "--assume-replicas",
    type=click.IntRange(min=0),
    default=None,
    metavar="N",
    help="dry-run: start from N replicas per batch and follow our own decisions "
    "(the default without Kubernetes, from 0).",
)
@click.option(
    "--run-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="local backend: where worker logs go (default: a temporary directory).",
)
def autoscaler_command(
    config_path: str | None,
    backend: str | None,
    listen: str,
    once: bool,
    assume_replicas: int | None,
    run_dir: Path | None,
) -> None:
    """Scale claimed batches hands-off, within their caps, while guards are healthy.

    \b
    Each tick (autoscaler.interval_seconds) it reads the snapshot the exporter
    beside it serves (autoscaler.snapshot_url; the local backend reads Redis
    itself), the guard queries, asks the pure policy (autoscaler/policy/) for a
    replica count per batch, and applies changes:
      kubernetes  patch the Deployment's scale subresource, record an Event
      local       start / warm-stop `celery worker` processes on this machine
      dry-run     log every decision, change nothing
    With the kubernetes backend only the replica holding the Lease
    (autoscaler.leader_election) acts. Unclaimed batches are reported, never
    scaled up. Anything that cannot be read makes the loop hold and say why.
    """
    from autoscaler.runtime import NotReady, Options, run
    from autoscaler.server import ListenError

    cfg = load_or_exit(config_path)

    def print_decisions(decisions: list[Decision]) -> None:
        click.echo(decision_table(decisions))

    opts = Options(
        backend or cfg.autoscaler.backend,
        listen,
        once=once,
        run_dir=run_dir,
        assume_replicas=assume_replicas,
    )
    try:
        code = run(cfg, opts, on_decisions=print_decisions)
    except ConfigError as e:
        config_error(e)
    except NotReady as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(EXIT_UNREACHABLE)
    except ListenError as e:  # the port is taken, or not ours to bind
        click.echo(f"cannot listen on {listen}: {e.strerror}", err=True)
        sys.exit(EXIT_USAGE)
    sys.exit(code)
