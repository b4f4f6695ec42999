"""`alerts render -o FILE` and `dashboard render -o FILE`: files Prometheus and Grafana,
running as other users, can read; a path that cannot be written is one line, exit 2."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from batchctl.cli import cli

COMMANDS = [("alerts", "render"), ("dashboard", "render")]


@pytest.fixture
def umask() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_a_new_file_is_readable_by_all_less_the_umask(
    command: tuple[str, str], tmp_path: Path, umask: None
) -> None:
    target = tmp_path / "out"
    res = CliRunner().invoke(cli, [*command, "-o", str(target)])
    assert res.exit_code == 0, res.output
    assert mode(target) == 0o644 and target.read_text()
    os.umask(0o027)
    target.unlink()
    assert CliRunner().invoke(cli, [*command, "-o", str(target)]).exit_code == 0
    assert mode(target) == 0o640
    # Nothing is left behind beside it.
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


@pytest.mark.parametrize("existing", [0o644, 0o640, 0o600, 0o664])
@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_an_existing_file_keeps_its_mode(
    command: tuple[str, str], existing: int, tmp_path: Path, umask: None
) -> None:
    target = tmp_path / "out"
    target.write_text("old")
    target.chmod(existing)
    res = CliRunner().invoke(cli, [*command, "-o", str(target)])
    assert res.exit_code == 0, res.output
    assert mode(target) == existing and target.read_text() != "old"


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_a_path_that_cannot_be_written_is_one_line_and_exit_2(
    command: tuple[str, str], tmp_path: Path
) -> None:
    target = tmp_path / "nonexistent" / "dir" / "x.yml"
    res = CliRunner().invoke(cli, [*command, "-o", str(target)])
    assert res.exit_code == 2, res.output
    assert res.stderr == f"error: cannot write {target}: No such file or directory\n"
    assert res.stdout == ""


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("fmt", ["json", "table", "yaml"])
def test_a_format_name_is_not_taken_as_a_file(
    command: tuple[str, str], fmt: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Elsewhere -o is a format: `-o json` here is refused (exit 2, no file named
    "json"); `-o ./json` writes that file."""
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(cli, [*command, "-o", fmt])
    assert r.exit_code == 2 and "not a format" in r.output, r.output
    assert not (tmp_path / fmt).exists()
    r = CliRunner().invoke(cli, [*command, "-o", f"./{fmt}"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / fmt).stat().st_size > 0
