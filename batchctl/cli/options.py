"""What every command shares: the config and output options, loading the config, printing
data and errors, and the exit codes (defined in batchctl/exitcodes.py, re-exported here).

Output: every command that prints data takes `-o/--output table|json`. With json, stdout
carries exactly one JSON document per result (per refresh with --watch), and an error is
a JSON document too, `{"error": "..."}` (with more keys where useful), on stdout, with
the same exit code as in table mode. Log lines always go to stderr.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar

import click

from batchctl import jsonout
from batchctl.config import Config, ConfigError, load_config
from batchctl.exitcodes import (
    EXIT_CODES_HELP,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
)
from batchctl.log import get_logger

__all__ = [
    "CONTEXT",
    "EXIT_CODES_HELP",
    "EXIT_OK",
    "EXIT_REFUSED",
    "EXIT_UNREACHABLE",
    "EXIT_USAGE",
    "TEXT",
    "Group",
    "Printer",
    "config_error",
    "config_option",
    "deprecated",
    "load_or_exit",
    "not_utf8",
    "output_option",
    "wants_json",
]

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

OUTPUTS = ("table", "json")
F = TypeVar("F", bound=Callable[..., Any])


class Text(click.ParamType):
    """Free text from the command line or its environment variable: valid UTF-8.

    Python hands over bytes that are not UTF-8 as lone surrogates ('caf\\udce9'), which
    cannot be written to Redis, a log line or JSON: refused here, as a usage error.
    """

    name = "text"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str):
            problem = not_utf8(value)
            if problem:
                self.fail(problem, param, ctx)
        return value


def not_utf8(text: str) -> str | None:
    """Why `text` is not valid UTF-8 (naming the byte), or None when it is."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        code = ord(text[e.start])
        byte = f"byte 0x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"U+{code:04X}"
        return (
            f"not valid UTF-8 text ({byte} at character {e.start + 1}); "
            "give it in UTF-8 (check your terminal's and locale's encoding)"
        )
    return None


TEXT = Text()


def output_option(f: F) -> F:
    return click.option(
        "--output",
        "-o",
        "output",
        type=click.Choice(OUTPUTS),
        default="table",
        show_default=True,
        help='table: for people; json: one JSON document on stdout (errors too: {"error": ...}).',
    )(f)


@dataclass(frozen=True)
class Printer:
    """Prints a command's result and its errors in the chosen output."""

    json: bool = False

    @classmethod
    def of(cls, output: str) -> Printer:
        return cls(json=output == "json")

    def data(self, doc: Mapping[str, Any], text: str | Callable[[], str]) -> None:
        """The result: `doc` as JSON, or `text` for people."""
        if self.json:
            click.echo(jsonout.dumps(doc, default=str))
        else:
            click.echo(text() if callable(text) else text)

    def warn(self, text: str) -> None:
        click.echo(f"warning: {text}", err=True)

    def fail(self, message: str, code: int = EXIT_REFUSED, **extra: Any) -> NoReturn:
        if self.json:
            click.echo(jsonout.dumps({"error": message, **extra}, default=str))
        else:
            click.echo(f"error: {message}", err=True)
        sys.exit(code)


def load_or_exit(path: str | None, printer: Printer | None = None) -> Config:
    """Load the config, or print every problem and exit 2 (no traceback)."""
    warnings: list[str] = []
    try:
        cfg = load_config(path, warnings=warnings)
    except ConfigError as e:
        config_error(e, printer)
    for w in warnings:
        get_logger("batchctl.config").warning("config", problem=w, source=path)
    return cfg


def config_error(e: ConfigError, printer: Printer | None = None) -> NoReturn:
    """Print a ConfigError (one line per problem) and exit 2."""
    if printer is not None and printer.json:
        printer.fail(f"{e.source}: {e.total} problem(s)", EXIT_USAGE, problems=e.problems)
    click.echo(e.render(), err=True)
    sys.exit(EXIT_USAGE)


def deprecated(option: str, use: str) -> None:
    get_logger("batchctl.cli").warning("deprecated option", option=option, use=use)


def wants_json(args: Sequence[str]) -> bool:
    """Whether raw command-line arguments ask for JSON output (for usage errors, which
    happen before the options are parsed)."""
    for i, a in enumerate(args):
        if a in ("-o", "--output") and i + 1 < len(args) and args[i + 1] == "json":
            return True
        if a in ("-ojson", "--output=json", "--json"):
            return True
    return False


class Group(click.Group):
    """The root group: a usage error of a command run with `-o json` prints
    `{"error": ...}` on stdout (exit 2), like every other error in JSON mode."""

    def main(self, args: Sequence[str] | None = None, *a: Any, **kw: Any) -> Any:  # type: ignore[override]
        argv = list(sys.argv[1:] if args is None else args)
        if not wants_json(argv):
            return super().main(argv, *a, **kw)
        try:
            return super().main(argv, *a, **{**kw, "standalone_mode": False})
        except click.ClickException as e:
            click.echo(json.dumps({"error": e.format_message()}))
            sys.exit(e.exit_code)
        except click.Abort:
            click.echo(json.dumps({"error": "aborted"}))
            sys.exit(1)
        except BrokenPipeError:  # `batchctl ... -o json | head`: the reader went away
            # As the Python docs advise: point stdout at devnull so that the flush at
            # exit does not raise again.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(1)
