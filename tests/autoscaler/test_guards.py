"""Guards: PromQL conditions judged from a real Prometheus' answers."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from autoscaler.guards import evaluate, judge
from autoscaler.policy import GuardStatus
from batchctl.config import GuardConfig
from tests.conftest import free_port, require_tool, wait_for

G = GuardConfig(name="db_connections", query="up == 0", shed=True)


@pytest.mark.parametrize(
    ("answer", "status"),
    [
        ({"status": "success", "data": {"resultType": "vector", "result": []}}, "healthy"),
        (
            {
                "status": "success",
                "data": {"resultType": "vector", "result": [{"value": [1, "3"]}]},
            },
            "unhealthy",
        ),
        ({"status": "success", "data": {"resultType": "scalar", "result": [1, "0"]}}, "healthy"),
        ({"status": "success", "data": {"resultType": "scalar", "result": [1, "2"]}}, "unhealthy"),
        ({"status": "error", "errorType": "bad_data", "error": "parse error"}, "unknown"),
        ({"status": "success", "data": {"resultType": "string", "result": [1, "x"]}}, "unknown"),
        (None, "unknown"),
    ],
)
def test_judge(answer: dict[str, object] | None, status: str) -> None:
    result = judge(G, answer)
    assert result.status == GuardStatus(status)
    assert result.name == "db_connections" and result.shed is True


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    exe = require_tool("prometheus")
    d = tmp_path_factory.mktemp("prom")
    (d / "prometheus.yml").write_text("global:\n  evaluation_interval: 1s\nscrape_configs: []\n")
    port = free_port()
    log = (d / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [
            exe,
            f"--config.file={d / 'prometheus.yml'}",
            f"--storage.tsdb.path={d / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        import urllib.request

        wait_for(
            lambda: urllib.request.urlopen(url + "/-/ready", timeout=1).status == 200,
            timeout=30,
            what="prometheus ready",
        )
        yield url
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


def test_evaluate_against_real_prometheus(prometheus: str) -> None:
    guards = [
        GuardConfig(name="always", query="vector(1)"),
        GuardConfig(name="never", query="vector(1) < 0"),
        GuardConfig(name="broken", query="sum(("),
    ]
    results = {r.name: r.status for r in evaluate(guards, prometheus, timeout=5)}
    assert results == {
        "always": GuardStatus.UNHEALTHY,
        "never": GuardStatus.HEALTHY,
        "broken": GuardStatus.UNKNOWN,
    }


def test_unreachable_prometheus_is_unknown(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    (result,) = evaluate([G], url, timeout=1)
    assert result.status == GuardStatus.UNKNOWN
    (result,) = evaluate([G], None, timeout=1)
    assert result.status == GuardStatus.UNKNOWN
