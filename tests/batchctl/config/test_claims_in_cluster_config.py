"""The config of the claims in Kubernetes: the store's default from the environment, the
exporter's Service, the site's config as the exporter serves it and the CLI reads it, and
the kubectl-style options pointing a command at the cluster."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from batchctl.cli.cluster import Cluster, with_cluster
from batchctl.config import ConfigError, parse_config
from batchctl.config.site import parse_site, site_json
from tests.support.fakekube import kubeconfig_dict

SITE = {
    "broker": {"url": "redis://:s3cret@redis:6379/0"},
    "kubernetes": {"namespace": "court-listener"},
    "batches": [{"queue": "batch1", "deployment": "celery-batch1", "max_replicas": 8}],
    "autoscaler": {
        "backend": "kubernetes",
        "prometheus_url": "http://user:pw@prometheus:9090",
        "guards": [{"name": "db", "query": "up == 0"}],
        "global_max_replicas": 7,
    },
    "cost": {"currency": "EUR", "price_per_replica_hour": 0.12},
}


def test_the_environment_names_the_store_when_the_file_does_not() -> None:
    env = {"BATCHCTL_CLAIMS_STORE": "kubernetes"}
    assert parse_config({}, env=env).claims.store == "kubernetes"
    assert parse_config({"claims": {"max_ttl": "2d"}}, env=env).claims.store == "kubernetes"
    # The file's own choice wins; without the variable, the default.
    assert parse_config({"claims": {"store": "redis"}}, env=env).claims.store == "redis"
    assert parse_config({}, env={}).claims.store == "redis"


def test_a_wrong_store_or_a_store_without_kubernetes_is_named() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"claims": {"store": "etcd"}}, env={})
    assert "claims.store" in str(info.value) and "'kubernetes'" in str(info.value)
    with pytest.raises(ConfigError) as info:
        parse_config({"kubernetes": {"enabled": False}, "claims": {"store": "kubernetes"}}, env={})
    assert "claims.store: kubernetes keeps the claims in Leases" in str(info.value)


@pytest.mark.parametrize("good", ["batchctl:9808", "https:batchctl:9808", "batchctl", "x:metrics"])
def test_the_exporter_service_as_the_proxy_names_it(good: str) -> None:
    assert parse_config({"kubernetes": {"exporter_service": good}}, env={})


@pytest.mark.parametrize("bad", ["batchctl:", "ftp:batchctl:1", "Batchctl:9808", "a:b:c:d", ""])
def test_a_bad_exporter_service_is_named(bad: str) -> None:
    with pytest.raises(ConfigError, match=r"kubernetes\.exporter_service: expected"):
        parse_config({"kubernetes": {"exporter_service": bad}}, env={})


def test_the_site_config_the_exporter_serves_holds_no_secret() -> None:
    cfg = parse_config(SITE, env={})
    served = site_json(cfg)
    text = yaml.safe_dump(served)
    for secret in ("s3cret", "redis:6379", "up == 0", "prometheus", "pw"):
        assert secret not in text
    assert set(served) == {"batches", "thresholds", "claims", "other_queues", "kubernetes",
                           "autoscaler", "cost"}  # fmt: skip
    back = parse_site(served)
    assert back.batches == cfg.batches and back.claims == cfg.claims
    # What `plan` and `history` price and cap with, as the site has it.
    assert back.cost == cfg.cost and back.prices_of("batch1") == cfg.prices_of("batch1")
    assert back.autoscaler.global_max_replicas == cfg.autoscaler.global_max_replicas
    assert back.kubernetes.namespace == "court-listener"
    assert back.autoscaler.backend == "kubernetes"


def test_a_newer_exporters_keys_are_dropped_not_fatal() -> None:
    served = site_json(parse_config(SITE, env={}))
    served["batches"][0]["finish_by"] = "tomorrow"  # a key of a later version
    served["claims"]["quorum"] = 3
    served["something_new"] = {"a": 1}
    back = parse_site(served)
    assert back.batch("batch1") is not None and back.batch("batch1").max_replicas == 8  # type: ignore[union-attr]
    with pytest.raises(ConfigError, match="max_replicas"):
        parse_site({**served, "batches": [{"queue": "q", "deployment": "d", "max_replicas": -1}]})


def kubeconfig(tmp: Path, namespace: str = "from-context") -> str:
    path = tmp / "kc"
    path.write_text(yaml.safe_dump(kubeconfig_dict("https://k", "t", namespace=namespace)))
    return str(path)


def test_the_options_point_a_command_at_the_cluster(tmp_path: Path) -> None:
    kc = kubeconfig(tmp_path)
    plain = parse_config({"kubernetes": {"enabled": False}}, env={})
    # No option: as configured.
    assert with_cluster(plain, Cluster()) == plain
    cfg = with_cluster(plain, Cluster(kubeconfig=kc))
    assert (cfg.claims.store, cfg.kubernetes.enabled) == ("kubernetes", True)
    assert cfg.kubernetes.kubeconfig == kc
    assert cfg.kubernetes.namespace == "from-context"  # kubectl's: the context's namespace
    # -n wins; a config's own namespace wins over the context's.
    assert with_cluster(plain, Cluster(kc, None, "ns1")).kubernetes.namespace == "ns1"
    own = parse_config({"kubernetes": {"namespace": "ns2"}}, env={})
    assert with_cluster(own, Cluster(kubeconfig=kc)).kubernetes.namespace == "ns2"
    # A config that names its store keeps it.
    redis = parse_config({"claims": {"store": "redis"}}, env={})
    assert with_cluster(redis, Cluster(kubeconfig=kc)).claims.store == "redis"
    # The context chosen: its namespace (none here: as configured).
    assert with_cluster(plain, Cluster(kc, "nowhere", None)).kubernetes.context == "nowhere"
