"""What a legal and platform review reads: the licence, the changelog, one version.

The version is written once (batchctl/__init__.py); pyproject.toml, the image's label
(the Dockerfile's VERSION, checked again by its build), the base kustomization's image
tag and CHANGELOG.md's newest release must all say the same.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from batchctl import __version__

ROOT = Path(__file__).resolve().parents[1]


def test_license_is_the_apache_2_text_the_metadata_names() -> None:
    text = (ROOT / "LICENSE").read_text()
    assert text.strip().startswith("Apache License")
    assert "Version 2.0, January 2004" in text
    assert "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION" in text
    assert "END OF TERMS AND CONDITIONS" in text and len(text) > 10_000
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["project"]["license"] == "Apache-2.0"
    assert 'org.opencontainers.image.licenses="Apache-2.0"' in (ROOT / "Dockerfile").read_text()


def test_one_version_everywhere() -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+", __version__)
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in pyproject["project"]
    assert pyproject["project"]["dynamic"] == ["version"]
    dynamic = pyproject["tool"]["setuptools"]["dynamic"]["version"]
    assert dynamic == {"attr": "batchctl.__version__"}
    dockerfile = (ROOT / "Dockerfile").read_text()
    defaults = re.findall(r"^ARG VERSION=(\S+)$", dockerfile, re.M)
    assert defaults == [__version__, __version__]  # the build stage's and the label's
    # The build refuses a VERSION the package does not carry.
    assert 'test "$(/opt/batchctl/bin/batchctl --version)" = "batchctl, version ${VERSION}"' in (
        dockerfile
    )
    base = yaml.safe_load((ROOT / "k8s" / "base" / "kustomization.yaml").read_text())
    assert base["images"] == [{"name": "batchctl", "newTag": __version__}]


def test_changelog_starts_with_this_release() -> None:
    text = (ROOT / "CHANGELOG.md").read_text()
    releases = re.findall(r"^## \[([^\]]+)\]", text, re.M)
    assert releases[0] in ("Unreleased", __version__)
    assert __version__ in releases
    assert "keepachangelog.com" in text
    # Config changes are called out in a section of their own.
    assert "### Configuration" in text


@pytest.mark.integration
def test_python_m_batchctl_and_the_version_flag() -> None:
    res = subprocess.run(
        [sys.executable, "-m", "batchctl", "--version"],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == f"batchctl, version {__version__}"
    res = subprocess.run(
        [sys.executable, "-m", "batchctl", "config", "check", "--help"],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )  # fmt: skip
    assert res.returncode == 0 and "Usage: batchctl config check" in res.stdout
