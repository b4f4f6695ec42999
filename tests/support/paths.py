"""Where things are: the repository root, and the console script of the virtualenv."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# `make test` runs .venv/bin/pytest without activating the venv: the script sits beside
# the interpreter, not necessarily on PATH.
BATCHCTL = str(Path(sys.executable).with_name("batchctl"))
