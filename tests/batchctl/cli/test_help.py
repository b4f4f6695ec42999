"""Every command's --help ends with the exit codes; --log-level belongs to batchctl."""

from __future__ import annotations

from collections.abc import Iterator

import click
from click.testing import CliRunner

from batchctl.cli import cli
from batchctl.cli.options import EXIT_CODES_HELP


def commands(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for name, command in group.commands.items():
        yield (*path, name)
        if isinstance(command, click.Group):
            yield from commands(command, (*path, name))


def test_every_command_help_ends_with_the_exit_codes() -> None:
    paths = list(commands(cli))
    assert ("claim",) in paths and ("config", "check") in paths and len(paths) > 12
    runner = CliRunner()
    for path in paths:
        r = runner.invoke(cli, [*path, "--help"])
        assert r.exit_code == 0, (path, r.output)
        assert " ".join(r.output.split()).endswith(EXIT_CODES_HELP), (path, r.output)


def test_log_level_goes_before_the_command() -> None:
    runner = CliRunner()
    assert "batchctl --log-level warning status" in runner.invoke(cli, ["--help"]).output
    r = runner.invoke(cli, ["status", "--log-level", "warning"])
    assert r.exit_code == 2 and "No such option '--log-level'" in r.output
