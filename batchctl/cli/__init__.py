"""The `batchctl` console script: thin click commands over the rooms.

Each command parses and validates its options, loads the config, and calls one
`run()` of the room that does the work (exporter.runtime, autoscaler.runtime,
batchctl.claims.service, ...). What commands share lives in two helper modules,
`batchctl.cli.options` (options, output, config loading, exit codes),
`batchctl.cli.common` (who you are, store and broker failures, claim outcomes) and
`batchctl.cli.cluster` (the kubeconfig options, your cluster identity, the exporter
through the API server's service proxy: the claims in Kubernetes), so a
command module imports neither this package nor another command: no import cycle, and
each command reads on its own. Every option can also come from an environment variable
BATCHCTL_<COMMAND>_<OPTION> (e.g. BATCHCTL_EXPORTER_LISTEN); `--config` from
BATCHCTL_CONFIG everywhere.
"""

from __future__ import annotations

import click

from batchctl import __version__
from batchctl.cli.autoscaler import autoscaler_command
from batchctl.cli.check import config_group
from batchctl.cli.claims import claim_command, release_command
from batchctl.cli.demo import demo_command
from batchctl.cli.exporter import exporter_command
from batchctl.cli.history import history_command
from batchctl.cli.migrate import claims_group
from batchctl.cli.options import CONTEXT, EXIT_CODES_HELP, Group
from batchctl.cli.plan import plan_command
from batchctl.cli.render import alerts_group, dashboard_group, render_group
from batchctl.cli.scale import scale_command
from batchctl.cli.simulate import simulate_command
from batchctl.cli.status import status_command
from batchctl.exitcodes import exit_codes_block
from batchctl.log import configure_logging

HELP = f"""Observe, alert on and autoscale Celery batch queues on Kubernetes.

\b
Typical day:
  batchctl claim batch1 --purpose "reindex dockets"   # take a batch (or --any)
  batchctl plan batch1 --finish-by 17:00                # what a deadline would take
  (enqueue your tasks to queue batch1)
  batchctl status --watch                               # watch it drain
  batchctl scale batch1 4 --for 1h                      # more workers, by hand
  batchctl release batch1 --drain                       # give it back when done
  batchctl history batch1                               # who had it, when, why

Output: every command that prints data takes -o/--output table|json; in JSON
mode errors are JSON too ({{"error": ...}}) and --watch prints one document per
refresh.

\b
Exit codes, the same for every command:
{exit_codes_block()}
Every command that takes a config reads BATCHCTL_CONFIG. --log-level and
--log-format go before the command: batchctl --log-level warning status.
docs/cli.md has it all.
"""


@click.group(cls=Group, context_settings=CONTEXT, help=HELP)
@click.version_option(__version__, prog_name="batchctl")
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"]),
    help="For every command; give it before the command: batchctl --log-level warning status.",
)
@click.option(
    "--log-format",
    default="auto",
    show_default=True,
    type=click.Choice(["auto", "json", "console"]),
    help="auto: console on a TTY, JSON lines otherwise.",
)
def cli(log_level: str, log_format: str) -> None:
    # The help is HELP: its exit codes come from batchctl/exitcodes.py.
    configure_logging(log_level, log_format)  # type: ignore[arg-type]


for command in (
    exporter_command,
    autoscaler_command,
    claim_command,
    plan_command,
    release_command,
    scale_command,
    history_command,
    status_command,
    claims_group,
    config_group,
    alerts_group,
    dashboard_group,
    render_group,
    simulate_command,
    demo_command,
):
    cli.add_command(command)


def with_exit_codes(command: click.Command) -> None:
    """End the --help of `command`, and of every command under it, with the exit codes."""
    if command.epilog is None:
        command.epilog = EXIT_CODES_HELP
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            with_exit_codes(sub)


for command in cli.commands.values():
    with_exit_codes(command)


def main() -> None:
    cli(prog_name="batchctl")


if __name__ == "__main__":
    main()
