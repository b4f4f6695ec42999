"""External tools (promtool, kubectl, chromium...): found, or skipped, or under CI failed."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_tool(name: str) -> str:
    """The path of an executable; fail under CI, skip elsewhere, when it is missing.

    The virtualenv's own bin comes first: kubectl and hadolint arrive as wheels of the
    dev extra, and `make test` runs .venv/bin/pytest without activating the venv."""
    path = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if path is None:
        msg = (
            f"{name} is not installed (make test installs it: the dev extra or "
            "scripts/ensure-tools.sh)"
        )
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)
    return path
