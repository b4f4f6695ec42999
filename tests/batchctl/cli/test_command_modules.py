"""The CLI's command modules stand alone: what they share lives in the helper modules.

Every module of batchctl/cli/ is a command module except the group (`__init__`) and
the helpers (`options`, `common`, and `cluster` for the claim commands' side in
Kubernetes). No command module imports another, and the helpers
import none: checked here on the source, so a command added tomorrow is covered, and
by import-linter's independence contract (pyproject.toml), whose list of modules this
test keeps complete.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
CLI = ROOT / "batchctl" / "cli"
HELPERS = {"options", "common", "cluster"}
COMMANDS = sorted(
    p.stem for p in CLI.glob("*.py") if p.stem != "__init__" and p.stem not in HELPERS
)


def imported(path: Path) -> set[str]:
    """Every module `path` imports, at the top or inside a function; `from batchctl.cli
    import claims` counts as importing batchctl.cli.claims."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the package batchctl.cli
                base = ".".join(["batchctl", "cli"][: 3 - node.level])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            out.add(module)
            out.update(f"{module}.{a.name}" for a in node.names)
    return out


def test_the_cli_has_the_commands_we_expect() -> None:
    # A sanity check of the discovery, not a list to keep up to date.
    assert {"claims", "history", "scale", "status", "exporter", "autoscaler"} <= set(COMMANDS)
    assert (CLI / "common.py").exists() and (CLI / "options.py").exists()


def test_no_command_module_imports_another() -> None:
    found = {}
    for name in [*COMMANDS, *HELPERS]:
        others = {f"batchctl.cli.{c}" for c in COMMANDS if c != name}
        bad = imported(CLI / f"{name}.py") & others
        if bad:
            found[name] = sorted(bad)
    assert found == {}, f"take shared helpers from batchctl/cli/common.py: {found}"


def test_the_import_contract_names_every_command_module() -> None:
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"][
        "contracts"
    ]
    (independence,) = [
        c
        for c in contracts
        if c["type"] == "independence"
        and any(m.startswith("batchctl.cli.") for m in c.get("modules", []))
    ]
    assert sorted(independence["modules"]) == [f"batchctl.cli.{c}" for c in COMMANDS]


def test_the_check_sees_an_import_of_another_command(tmp_path: Path) -> None:
    """The check can fail: each spelling of an import of a command is seen."""
    for line in (
        "from batchctl.cli.claims import when",
        "from batchctl.cli import claims",
        "import batchctl.cli.claims",
        "from . import claims",
        "from .claims import when",
        "def f():\n    from batchctl.cli.claims import when",
    ):
        planted = tmp_path / "history.py"
        planted.write_text(line + "\n")
        assert "batchctl.cli.claims" in imported(planted), line
