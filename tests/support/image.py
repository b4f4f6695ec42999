"""The container image's build context, without Docker (tests/test_image.py, and
benchmarks/container_footprint.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.support.paths import ROOT

PACKAGES = ["batchctl", "exporter", "autoscaler", "alerts", "grafana"]


def build_context(dest: Path) -> Path:
    """What `docker build .` sends: the files the Dockerfile copies."""
    ctx = dest / "context"
    ctx.mkdir()
    for name in ("requirements.lock", "pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, ctx / name)
    for pkg in PACKAGES:
        shutil.copytree(ROOT / pkg, ctx / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    return ctx
