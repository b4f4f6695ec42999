"""The distribution installs exactly the packages the layout names, nothing else."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.support.paths import ROOT

pytestmark = pytest.mark.integration

TOP_LEVEL = {"batchctl", "exporter", "autoscaler", "alerts", "grafana"}


@pytest.mark.slow
def test_wheel_holds_exactly_the_layout_packages(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(ROOT), "-w", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    (wheel,) = tmp_path.glob("batchctl-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/", 1)[0] for n in names if not n.split("/", 1)[0].endswith(".dist-info")}
    assert tops == TOP_LEVEL
    # The Lua scripts and the committed renders ship with the code that reads them.
    for data in (
        "exporter/broker/redis/envelope.lua",
        "exporter/broker/redis/lists.lua",
        "exporter/broker/redis/locate.lua",
        "exporter/broker/redis/unacked.lua",
        "alerts/batchctl.rules.yml",
    ):
        assert data in names
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "batchctl = batchctl.cli:main" in zipfile.ZipFile(wheel).read(entry).decode()
