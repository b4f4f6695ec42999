"""Docs that must not drift: every config key documented, README opens with two commands."""

from __future__ import annotations

import re
import subprocess

import pytest
from pydantic import BaseModel

from batchctl.config import Config
from tests.support.paths import ROOT


def keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    out = []
    for name, field in model.model_fields.items():
        ann = field.annotation
        nested = [
            a
            for a in (ann, *getattr(ann, "__args__", ()))
            if isinstance(a, type) and issubclass(a, BaseModel)
        ]
        out.append(prefix + name)
        if nested:
            out.extend(keys(nested[0], prefix + name + "."))
    return out


def test_every_config_key_is_documented() -> None:
    doc = (ROOT / "docs" / "configuration.md").read_text()
    missing = [k for k in keys(Config) if f"`{k.rsplit('.', 1)[-1]}`" not in doc]
    assert missing == []
    # And each section exists.
    for section in (
        "broker",
        "kubernetes",
        "batches",
        "thresholds",
        "exporter",
        "alerts",
        "events",
    ):
        assert f"## `{section}`" in doc


def test_readme_opens_with_the_two_commands() -> None:
    text = (ROOT / "README.md").read_text()
    first_block = text.split("```")[1]
    assert [ln.strip() for ln in first_block.strip().splitlines()] == ["make demo", "make test"]


@pytest.mark.integration
def test_nothing_cites_a_file_outside_the_repository() -> None:
    """Facts the code relies on live in docs/ (docs/design.md), not in files we do not ship."""
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    outside = re.compile(r"DESIGN\.md|\.\./shared/|shared/seed")
    offenders = [
        path
        for path in tracked
        if path.endswith((".py", ".md", ".yml", ".yaml", ".toml", "Makefile"))
        and path != "tests/docs/test_docs.py"  # this test names the patterns
        and outside.search((ROOT / path).read_text(errors="replace"))
    ]
    assert offenders == [], offenders
