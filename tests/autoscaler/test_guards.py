"""Guards: PromQL conditions judged from a real Prometheus' answers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from autoscaler.guards import evaluate, judge, query
from autoscaler.policy import GuardStatus
from batchctl.config import GuardConfig, parse_config
from exporter.runtime import start_exporter
from tests.support.isolation import starts_servers
from tests.support.paths import ROOT
from tests.support.servers.prometheus import prometheus
from tests.support.servers.redis import RedisServer, free_port
from tests.support.waits import wait_for

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
@starts_servers
def prometheus_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    config = {"global": {"evaluation_interval": "1s"}, "scrape_configs": []}
    with prometheus(config, tmp_path_factory.mktemp("prom")) as url:
        yield url


def test_evaluate_against_real_prometheus(prometheus_url: str) -> None:
    guards = [
        GuardConfig(name="always", query="vector(1)"),
        GuardConfig(name="never", query="vector(1) < 0"),
        GuardConfig(name="broken", query="sum(("),
    ]
    results = {r.name: r.status for r in evaluate(guards, prometheus_url, timeout=5)}
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


@pytest.mark.parametrize(
    ("value", "shown"), [("NaN", "NaN"), ("+Inf", "+Inf"), ("-Inf", "-Inf"), ("x", "a sample")]
)
def test_a_sample_that_is_no_number_is_unknown_and_says_so(value: str, shown: str) -> None:
    answer = {
        "status": "success",
        "data": {"resultType": "vector", "result": [{"value": [1, value]}]},
    }
    result = judge(G, answer)
    assert result.status == GuardStatus.UNKNOWN and shown in result.detail


def _doc_guards() -> list[GuardConfig]:
    """The example guards of docs/configuration.md, exactly as a user would copy them."""
    doc = (ROOT / "docs" / "configuration.md").read_text()
    block = doc.split("Example guards:", 1)[1].split("```yaml", 1)[1].split("```", 1)[0]
    cfg = parse_config(yaml.safe_load(block), env={})
    assert len(cfg.autoscaler.guards) >= 3
    return list(cfg.autoscaler.guards)


@pytest.fixture
def scraped(own_redis: RedisServer, tmp_path: Path) -> Iterator[tuple[str, RedisServer]]:
    """A real exporter on a Redis left at its defaults (maxmemory 0), scraped every second
    by a real Prometheus."""
    cfg = parse_config({"broker": {"url": own_redis.url}, "kubernetes": {"enabled": False}}, env={})
    exporter = start_exporter(cfg, f"127.0.0.1:{free_port()}")
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {
                "job_name": "batchctl",
                "static_configs": [{"targets": [exporter.url.removeprefix("http://")]}],
            }
        ],
    }
    try:
        with prometheus(config, tmp_path) as url:
            wait_for(
                lambda: query(url, "celery_broker_memory_max_bytes", 2)["data"]["result"],  # type: ignore[index]
                timeout=30,
                what="prometheus scraped the exporter",
            )
            yield url, own_redis
    finally:
        exporter.stop()


def test_every_documented_guard_is_right_with_redis_defaults(
    scraped: tuple[str, RedisServer],
) -> None:
    url, server = scraped
    guards = _doc_guards()
    # maxmemory 0 (Redis' default): nothing to guard, and not a hold that never ends.
    assert server.client().config_get("maxmemory") in ({"maxmemory": "0"}, {b"maxmemory": b"0"})
    for result in evaluate(guards, url, timeout=5):
        assert result.status == GuardStatus.HEALTHY, result
    # The ratio the docs used to show divides by that 0: +Inf, reported as unknown.
    naive = GuardConfig(
        name="naive", query="celery_broker_memory_used_bytes / celery_broker_memory_max_bytes > 0.7"
    )
    (result,) = evaluate([naive], url, timeout=5)
    assert result.status == GuardStatus.UNKNOWN and "+Inf" in result.detail
    # And the documented guard does fire once a limit exists and is nearly reached.
    used = int(server.client().info("memory")["used_memory"])
    server.client().config_set("maxmemory", str(int(used / 0.75)))
    memory = next(g for g in guards if g.name == "redis_memory")
    wait_for(
        lambda: evaluate([memory], url, timeout=5)[0].status == GuardStatus.UNHEALTHY,
        timeout=20,
        what="redis_memory unhealthy at 75% of maxmemory",
    )
