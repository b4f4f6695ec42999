"""`batchctl autoscaler`: the live scaling loop (the sidecar beside the exporter)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from batchctl.cli.common import host_port
from batchctl.cli.options import (
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    Printer,
    config_error,
    config_option,
    load_or_exit,
    output_option,
)
from batchctl.config import ConfigError
from batchctl.decisions import DecisionRecord
from batchctl.textcols import columns

if TYPE_CHECKING:
    from autoscaler.policy import Decision


def decision_table(decisions: list[Decision]) -> str:
    """One line per batch under a header, as `--once` prints it."""
    rows = [("QUEUE", "REPLICAS", "DESIRED", "ACTION", "REASON", "DETAIL")]
    for d in decisions:
        rows.append(
            (d.queue, str(d.current), str(d.desired), str(d.action), str(d.reason), d.detail)
        )
    return columns(rows, free_last=True)


def decisions_json(decisions: list[Decision]) -> list[dict[str, object]]:
    """The shape of /api/v1/decisions (batchctl.decisions): `current`, `desired`, ..."""
    return [DecisionRecord.of(d).to_json() for d in decisions]


@click.command("autoscaler")
@config_option
@click.option(
    "--backend",
    type=click.Choice(["kubernetes", "local", "dry-run"]),
    default=None,
    help="Where replicas live (default from autoscaler.backend in the config).",
)
@click.option(
    "--dry-run",
    "dry_run",
    is_flag=True,
    help="The same as --backend dry-run: decide and log, change nothing.",
)
@click.option(
    "--listen",
    "-l",
    default="0.0.0.0:9809",
    show_default=True,
    callback=host_port("0.0.0.0:9809"),
    help="HOST:PORT for the autoscaler's own /metrics, /healthz and /readyz.",
)
@click.option(
    "--once",
    is_flag=True,
    help="Wait for a first snapshot, run one tick, print the decisions and exit "
    "(0 done, 1 a change could not be applied, 3 nothing answered or nothing could be "
    "decided).",
)
@output_option
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
    dry_run: bool,
    listen: str,
    once: bool,
    output: str,
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
      dry-run     log what it would do, change nothing
    A decision is logged when it changes (every tick at --log-level debug).
    With the kubernetes backend only the replica holding the Lease
    (autoscaler.leader_election) acts. Unclaimed batches are reported, never
    scaled up. Anything that cannot be read makes the loop hold and say why.
    A batch released with --drain is finished, taken to min_replicas and its claim
    ended by the acting autoscaler. With --once, -o json prints the decisions as
    one JSON document.

    \b
      batchctl autoscaler --dry-run --once        what it would do now, then exit
      batchctl autoscaler -c batchctl.yml         the sidecar, as k8s/base runs it
    """
    from autoscaler.runtime import NotReady, Options, run
    from autoscaler.server import ListenError

    out = Printer.of(output)
    if dry_run:
        if backend not in (None, "dry-run"):
            out.fail(f"--dry-run and --backend {backend} contradict each other", EXIT_USAGE)
        backend = "dry-run"
    cfg = load_or_exit(config_path, out)
    if (backend or cfg.autoscaler.backend) == "kubernetes" and not cfg.kubernetes.enabled:
        # Named as the conflict it is, not as a kubeconfig that cannot be loaded.
        chosen = "--backend kubernetes" if backend else "autoscaler.backend: kubernetes"
        config_error(
            ConfigError(
                [
                    f"{chosen} needs kubernetes.enabled: true, but kubernetes.enabled is "
                    "false: enable Kubernetes, or use --backend dry-run or local"
                ],
                config_path or "config",
            ),
            out,
        )
    decided: list[Decision] = []

    def print_decisions(decisions: list[Decision]) -> None:
        decided.extend(decisions)

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
        config_error(e, out)
    except NotReady as e:
        out.fail(str(e), EXIT_USAGE if e.config else EXIT_UNREACHABLE)
    except ListenError as e:  # the port is taken, or not ours to bind
        out.fail(f"cannot listen on {listen}: {e.strerror}", EXIT_USAGE)
    if once:
        doc = {"decisions": decisions_json(decided), "exit_code": code}
        out.data(doc, lambda: decision_table(decided))
    sys.exit(code)
