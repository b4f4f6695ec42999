"""The import contracts (pyproject.toml, `lint-imports`) catch what they are for.

Each test copies the source tree and pyproject.toml to a temporary directory, plants an
import that breaks the house plan, and runs `lint-imports` there: it must fail, naming
the planted import. The unplanted copy must pass, so a failure is the plant's doing.
lint-imports puts its working directory first on sys.path, so the copy is what it reads
(not the editable install of this checkout).
"""

from __future__ import annotations

import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from tests.support.tools import require_tool

pytestmark = pytest.mark.integration  # real servers, subprocesses or tools

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("batchctl", "exporter", "autoscaler", "alerts", "grafana")
PURE_POLICY = "The policy is pure: no I/O, no clock, no randomness, no config machinery"


def source_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "src"
    copy.mkdir()
    shutil.copy(ROOT / "pyproject.toml", copy)
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package, copy / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    return copy


def plant(copy: Path, module: str, line: str) -> None:
    """Append `line` to the module's file (created when it does not exist)."""
    path = copy / (module.replace(".", "/") + ".py")
    before = path.read_text() if path.exists() else '"""Planted."""\n'
    path.write_text(before + f"\n{line}  # planted\n")


def lint_imports(copy: Path) -> subprocess.CompletedProcess[str]:
    exe = require_tool("lint-imports")
    return subprocess.run(
        [exe, "--no-cache"], cwd=copy, capture_output=True, text=True, timeout=120, check=False
    )


def test_the_unplanted_copy_passes(tmp_path: Path) -> None:
    res = lint_imports(source_copy(tmp_path))
    assert res.returncode == 0, res.stdout + res.stderr
    assert " broken" in res.stdout and "0 broken" in res.stdout


@pytest.mark.parametrize(
    ("module", "line", "named"),
    [
        # A new core module nobody placed, using the autoscaler's wiring.
        ("batchctl.anything", "import autoscaler.runtime", "batchctl.anything"),
        # A core module reaching into the exporter's data contract.
        ("batchctl.httpd", "import exporter.snapshot", "batchctl.httpd -> exporter.snapshot"),
        # The pure policy reaching for the broker's library, or for chance.
        ("autoscaler.policy.model", "import kombu", "autoscaler.policy.model -> kombu"),
        ("autoscaler.policy.budget", "import random", "autoscaler.policy.budget -> random"),
        # A new autoscaler module, or a new policy module, that no layer places.
        ("autoscaler.anything", "import autoscaler.policy", "autoscaler.anything"),
        ("autoscaler.policy.anything", "import math", "autoscaler.policy.anything"),
        # A rule reading the config instead of its BatchPolicy; a backend using another.
        ("autoscaler.policy.growth", "import batchctl.config", "-> batchctl.config"),
        (
            "autoscaler.backends.local",
            "import autoscaler.backends.kubernetes",
            "autoscaler.backends.local -> autoscaler.backends.kubernetes",
        ),
        # The loop must not load the Kubernetes client.
        ("autoscaler.loop", "import autoscaler.leader", "autoscaler.loop -> autoscaler.leader"),
    ],
)
def test_a_planted_import_fails(tmp_path: Path, module: str, line: str, named: str) -> None:
    copy = source_copy(tmp_path)
    plant(copy, module, line)
    res = lint_imports(copy)
    assert res.returncode != 0, res.stdout
    assert named in res.stdout, res.stdout


def test_every_module_the_policy_may_not_import_is_caught(tmp_path: Path) -> None:
    """Each of the pure-policy contract's forbidden modules, planted in one policy module:
    lint-imports names every one (stdlib and third party, direct imports)."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    (contract,) = [
        c for c in config["tool"]["importlinter"]["contracts"] if c["name"] == PURE_POLICY
    ]
    forbidden = contract["forbidden_modules"]
    assert {"time", "datetime", "random", "os", "kombu", "pydantic", "batchctl.config"} <= set(
        forbidden
    )
    copy = source_copy(tmp_path)
    for module in forbidden:
        plant(copy, "autoscaler.policy.tick", f"import {module}")
    res = lint_imports(copy)
    assert res.returncode != 0, res.stdout
    missed = [
        m for m in forbidden if f"autoscaler.policy is not allowed to import {m}:" not in res.stdout
    ]
    assert missed == [], res.stdout
