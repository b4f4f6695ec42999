"""Every command's --help ends with the exit codes; --log-level belongs to batchctl."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import click
from click.testing import CliRunner

from batchctl.cli import cli
from batchctl.cli.options import EXIT_CODES_HELP
from batchctl.exitcodes import EXIT_CODES

ROOT = Path(__file__).resolve().parents[3]


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


def test_the_exit_codes_are_said_alike_in_the_help_and_the_docs() -> None:
    """batchctl/exitcodes.py is the one definition: the root --help lists each code with
    its meaning, and docs/cli.md's table has a row for each, in order."""
    help_text = CliRunner().invoke(cli, ["--help"]).output
    for c in EXIT_CODES:
        assert f"\n    {c.code}  {c.meaning}" in help_text, (c, help_text)
    doc = (ROOT / "docs" / "cli.md").read_text()
    rows = re.findall(r"^\| (\d) \| ([^|]+?) \|", doc, flags=re.M)
    assert [(int(code), meaning) for code, meaning in rows] == [
        (c.code, c.meaning) for c in EXIT_CODES
    ]
