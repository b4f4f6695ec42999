"""A real Prometheus (Debian's `prometheus`) for the tests that query one."""

from __future__ import annotations

import contextlib
import subprocess
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from tests.support.servers.redis import free_port
from tests.support.tools import require_tool
from tests.support.waits import wait_for


@contextlib.contextmanager
def prometheus(config: Mapping[str, Any], workdir: Path, timeout: float = 30.0) -> Iterator[str]:
    """Prometheus with `config` (prometheus.yml's content) on a free loopback port: its base
    URL once /-/ready answers. Its data and log (prometheus.log) are in `workdir`."""
    exe = require_tool("prometheus")
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "prometheus.yml").write_text(yaml.safe_dump(dict(config)))
    url = f"http://127.0.0.1:{free_port()}"
    with (workdir / "prometheus.log").open("wb") as log:
        proc = subprocess.Popen(
            [
                exe,
                f"--config.file={workdir / 'prometheus.yml'}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address={url.removeprefix('http://')}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(
            lambda: urllib.request.urlopen(url + "/-/ready", timeout=1).status == 200,
            timeout=timeout,
            what=f"prometheus ready (its log: {workdir / 'prometheus.log'})",
        )
        yield url
    finally:
        proc.terminate()
        proc.wait(10)
