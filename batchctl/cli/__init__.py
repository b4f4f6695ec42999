"""The `batchctl` console script: a thin click layer over exporter/ and autoscaler/.

Every option can also come from an environment variable BATCHCTL_<COMMAND>_<OPTION>
(e.g. BATCHCTL_EXPORTER_LISTEN); `--config` from BATCHCTL_CONFIG everywhere.
"""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType

import click

from batchctl import __version__
from batchctl.config import Config, ConfigError, load_config
from batchctl.log import configure_logging

CONTEXT = {"auto_envvar_prefix": "BATCHCTL", "help_option_names": ["-h", "--help"]}

config_option = click.option(
    "--config",
    "-c",
    "config_path",
    type=click.Path(dir_okay=False),
    envvar="BATCHCTL_CONFIG",
    help="YAML config file (see docs/configuration.md); defaults apply when omitted.",
)


def load_or_exit(path: str | None) -> Config:
    """Load the config, or print every problem and exit 2 (no traceback)."""
    try:
        return load_config(path)
    except ConfigError as e:
        click.echo(e.render(), err=True)
        sys.exit(2)


def wait_for_shutdown() -> None:
    """Block until SIGTERM (Kubernetes) or SIGINT (Ctrl-C)."""
    done = threading.Event()

    def _stop(signum: int, _frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    done.wait()


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, prog_name="batchctl")
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"]),
)
@click.option(
    "--log-format",
    default="auto",
    show_default=True,
    type=click.Choice(["auto", "json", "console"]),
    help="auto: console on a TTY, JSON lines otherwise.",
)
def cli(log_level: str, log_format: str) -> None:
    """Observe, alert on and autoscale Celery batch queues on Kubernetes.

    \b
    Typical day:
      batchctl claim batch1 --purpose "reindex dockets"   # take a batch
      (enqueue your tasks to queue batch1)
      batchctl status                                       # watch it drain
      batchctl release batch1                               # give it back
    """
    configure_logging(log_level, log_format)  # type: ignore[arg-type]


@cli.group("config")
def config_group() -> None:
    """Check the configuration file."""


@config_group.command("check")
@click.argument("file", type=click.Path(dir_okay=False))
def config_check(file: str) -> None:
    """Validate FILE; print every problem with its key path and exit 2 if any."""
    cfg = load_or_exit(file)
    click.echo(
        f"{file}: OK ({len(cfg.batches)} batches, broker {cfg.broker.url and _redacted(cfg)})"
    )


def _redacted(cfg: Config) -> str:
    from batchctl.redact import redact_url

    return redact_url(cfg.broker.url)


def _register() -> None:
    # Subcommand modules import `cli` from here, so they are attached after it exists.
    from batchctl.cli.exporter import exporter_command

    cli.add_command(exporter_command)

    from batchctl.cli.demo import demo_command

    cli.add_command(demo_command)

    from batchctl.cli.autoscaler import autoscaler_command

    cli.add_command(autoscaler_command)

    from batchctl.cli.claims import claim_command, release_command, status_command

    cli.add_command(claim_command)
    cli.add_command(release_command)
    cli.add_command(status_command)

    from batchctl.cli.render import alerts_group, dashboard_group

    cli.add_command(alerts_group)
    cli.add_command(dashboard_group)

    from batchctl.cli.simulate import simulate_command

    cli.add_command(simulate_command)


_register()


def main() -> None:
    cli(prog_name="batchctl")


if __name__ == "__main__":
    main()
