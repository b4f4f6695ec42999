"""mypy is strict on the pure policy and the snapshot contract, and only there.

The strictness lives in pyproject.toml's [[tool.mypy.overrides]], which `make lint` and
`make test` both read. Planted in a scratch tree under those module names, an untyped
function fails; the same function in another module passes.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support.tools import require_tool

pytestmark = pytest.mark.integration  # real servers, subprocesses or tools

ROOT = Path(__file__).resolve().parents[2]
UNTYPED = "def double(x):\n    return 2 * x\n"


@pytest.mark.slow  # a cold mypy run: about 10 s
def test_the_policy_and_the_snapshot_are_checked_strictly(tmp_path: Path) -> None:
    planted = {
        "autoscaler/policy/planted.py": True,
        "autoscaler/policy/__init__.py": True,
        "exporter/snapshot.py": True,
        "autoscaler/loop.py": False,
        "exporter/collect.py": False,
    }
    for name in planted:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        for package in (path.parent, path.parent.parent):
            if package != tmp_path:
                (package / "__init__.py").touch()
        path.write_text(UNTYPED)
    mypy = require_tool("mypy")
    res = subprocess.run(
        [mypy, "--config-file", str(ROOT / "pyproject.toml"), "--no-incremental", *planted],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    flagged = {
        line.split(":")[0]
        for line in res.stdout.splitlines()
        if "Function is missing a type annotation" in line
    }
    assert flagged == {name for name, strict in planted.items() if strict}, res.stdout
