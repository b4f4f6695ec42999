"""exporter/'s import contracts (pyproject.toml) catch what they are for: each import
planted below, in a temporary copy of the code, breaks exactly the contract named."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration  # real servers, subprocesses or tools

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("batchctl", "exporter", "autoscaler", "alerts", "grafana")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def contract(prefix: str) -> str:
    """The name of the one contract in pyproject.toml that starts with `prefix`."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    names = [c["name"] for c in config["tool"]["importlinter"]["contracts"]]
    (name,) = [n for n in names if n.startswith(prefix)]
    return name


LAYERS = "exporter: runtime -> http"
BROKER = "exporter.broker: implementations"
REDIS = "exporter.broker.redis: reader"
READERS = "The readers of the broker, the cluster"
STATUS = "The status room renders"
SNAPSHOT = "The snapshot contract"

# (module file, the line planted, the contract it must break)
PLANTS = {
    "a broker reader imports the status room": (
        "exporter/broker/redis/keys.py", "import exporter.status.page", LAYERS
    ),
    "a new module placed in no layer": ("exporter/newroom.py", "import exporter.snapshot", LAYERS),
    "the broker protocol imports its Redis implementation": (
        "exporter/broker/protocol.py", "import exporter.broker.redis.keys", BROKER
    ),
    "kombu's key naming imports the reader": (
        "exporter/broker/redis/keys.py", "import exporter.broker.redis.reader", REDIS
    ),
    "the events consumer imports the Deployment cache": (
        "exporter/events/consumer.py", "import exporter.kube.api", READERS
    ),
    "the status table reads the broker": (
        "exporter/status/table.py", "import exporter.broker.redis.keys", STATUS
    ),
    "the snapshot contract imports redis": ("exporter/snapshot.py", "import redis", SNAPSHOT),
}  # fmt: skip


def lint_imports(tree: Path) -> str:
    """lint-imports on `tree` (its own copy of the packages first on the path)."""
    done = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=tree,
        env={**os.environ, "PYTHONPATH": str(tree)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    # Contract names wrap in the report: compare with the whitespace normalised.
    return " ".join((done.stdout + done.stderr).split())


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tree = tmp_path_factory.mktemp("code")
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tree / package, ignore=shutil.ignore_patterns("__py*"))
    shutil.copy(ROOT / "pyproject.toml", tree)
    return tree


def test_the_copy_keeps_every_contract(pristine: Path) -> None:
    report = lint_imports(pristine)
    assert ", 0 broken." in report, report


@pytest.mark.parametrize("plant", list(PLANTS))
def test_a_planted_import_breaks_its_contract(plant: str, pristine: Path, tmp_path: Path) -> None:
    path, line, prefix = PLANTS[plant]
    tree = tmp_path / "code"
    shutil.copytree(pristine, tree)
    module = tree / path
    before = module.read_text() if module.exists() else ""
    module.write_text(f"{before}\n{line}  # planted\n")
    report = lint_imports(tree)
    assert f"{contract(prefix)} BROKEN" in report, report
