"""What every command shares: the config option, loading it, and the exit codes.

Exit codes, the same for every command: 0 done, 1 refused or conflict, 2 usage or
config error, 3 backend unreachable.
"""

from __future__ import annotations

import sys
from typing import NoReturn

import click

from batchctl.config import Config, ConfigError, load_config
from batchctl.log import get_logger

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3

CONTEXT = {"auto_envvar_prefix": "BATCHCTL", "help_option_names": ["-h", "--help"]}

config_option = click.option(
    "--config",
    "-c",
    "config_path",
    type=click.Path(dir_okay=False),
    envvar="BATCHCTL_CONFIG",
    help="YAML config file (see docs/configuration.md); defaults apply when omitted. "
    "[env: BATCHCTL_CONFIG]",
)


def load_or_exit(path: str | None) -> Config:
    """Load the config, or print every problem and exit 2 (no traceback)."""
    warnings: list[str] = []
    try:
        cfg = load_config(path, warnings=warnings)
    except ConfigError as e:
        config_error(e)
    for w in warnings:
        get_logger("batchctl.config").warning("config", problem=w, source=path)
    return cfg


def config_error(e: ConfigError) -> NoReturn:
    """Print a ConfigError (one line per problem) and exit 2."""
    click.echo(e.render(), err=True)
    sys.exit(EXIT_USAGE)
