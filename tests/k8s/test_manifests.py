"""The manifests as a platform team applies them: kustomize renders, the schemas accept,
the pieces fit together (selectors, ports, probes), and they agree with the config."""

from __future__ import annotations

import json
import math
import os
import shlex
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml
from celery import Celery

from alerts.render import render_rules
from batchctl.config import Config, load_config
from tests.support.http import get
from tests.support.isolation import starts_servers
from tests.support.kustomize import (
    K8S,
    ROOT,
    Doc,
    copy_tree,
    crd_validators,
    kustomize,
    one,
    validate,
)
from tests.support.paths import BATCHCTL
from tests.support.tools import require_tool

EXAMPLE = K8S / "overlays" / "example"


@pytest.fixture(scope="module")
def cfg() -> Config:
    return load_config(EXAMPLE / "batchctl.yml", env={})


@pytest.fixture(scope="module")
@starts_servers
def overlay(tmp_path_factory: pytest.TempPathFactory) -> list[Doc]:
    """k8s/overlays/example as a clean clone has it, nothing copied or created first."""
    tree = copy_tree(tmp_path_factory.mktemp("clone"))
    return kustomize(tree / "overlays" / "example")


@pytest.fixture(scope="module")
@starts_servers
def base() -> list[Doc]:
    return kustomize(K8S / "base")


def containers(docs: list[Doc]) -> list[tuple[Doc, Doc]]:
    """(Deployment, container) for every container of every Deployment."""
    return [
        (d, c)
        for d in docs
        if d["kind"] == "Deployment"
        for c in d["spec"]["template"]["spec"]["containers"]
    ]


def batchctl_pod(docs: list[Doc]) -> Doc:
    return one(docs, "Deployment", "batchctl")["spec"]["template"]


def test_the_base_holds_nothing_a_site_edits(base: list[Doc]) -> None:
    """No config, no batch names, no rules or dashboard: those are the overlay's."""
    text = yaml.safe_dump_all(base)
    for site_specific in ("celery-batch", "batch0", "court-listener", "batchctl.yml:"):
        assert site_specific not in text
    assert not [d for d in base if d["kind"] in ("ConfigMap", "Secret", "PrometheusRule")]
    assert sorted(p.name for p in (K8S / "base").iterdir()) == sorted(
        ["kustomization.yaml", "deployment.yaml", "service.yaml", "serviceaccount.yaml",
         "rbac.yaml", "pdb.yaml", "networkpolicy.yaml"]
    )  # fmt: skip


def test_every_object_is_schema_valid(overlay: list[Doc], base: list[Doc]) -> None:
    kinds = sorted(d["kind"] for d in overlay)
    # Roles: batchctl, batchctl-scale, batchctl-claims (the service account's) and the
    # people's batchctl-viewer, -claimer, -admin (the claims in Leases: issue 21).
    assert kinds == sorted(
        ["ConfigMap"] * 3 + ["Deployment"] * 5 + ["NetworkPolicy", "PodDisruptionBudget",
         "PrometheusRule"] + ["Role"] * 6 + ["RoleBinding"] * 3 + ["Service",
         "ServiceAccount", "ServiceMonitor"]
    )  # fmt: skip
    for doc in overlay + base:
        validate(doc)
    for doc in overlay:
        assert doc["metadata"]["namespace"] == "court-listener", doc["metadata"]["name"]
        # docs/deploy.md removes batchctl (and not the workers) by this label.
        label = doc["metadata"].get("labels", {}).get("app.kubernetes.io/name")
        worker = doc["metadata"]["name"].startswith("celery-batch")
        assert (label == "celery-worker") if worker else (label == "batchctl"), doc["kind"]
    for binding in (d for d in overlay if d["kind"] == "RoleBinding"):
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "batchctl", "namespace": "court-listener"}
        ]


def test_custom_resources_are_validated_strictly(overlay: list[Doc]) -> None:
    assert set(crd_validators()) >= {
        ("monitoring.coreos.com/v1", "ServiceMonitor"),
        ("monitoring.coreos.com/v1", "PrometheusRule"),
    }
    monitor = json.loads(json.dumps(one(overlay, "ServiceMonitor")))
    monitor["spec"]["endpoints"][0]["intervall"] = "30s"  # a typo must not pass
    with pytest.raises(jsonschema.ValidationError, match="intervall"):
        validate(monitor)
    rule = json.loads(json.dumps(one(overlay, "PrometheusRule")))
    rule["spec"]["groups"][0]["rules"][0]["for"] = 15  # not a duration string
    with pytest.raises(jsonschema.ValidationError):
        validate(rule)


def test_selectors_ports_and_monitors_fit_together(overlay: list[Doc]) -> None:
    for dep in (d for d in overlay if d["kind"] == "Deployment"):
        labels = dep["spec"]["template"]["metadata"]["labels"]
        assert dep["spec"]["selector"]["matchLabels"].items() <= labels.items()
    pod = batchctl_pod(overlay)
    pod_labels = pod["metadata"]["labels"]
    ports = {p["name"]: p for c in pod["spec"]["containers"] for p in c.get("ports", [])}
    service = one(overlay, "Service")
    assert service["spec"]["selector"].items() <= pod_labels.items()
    # The Service selects the batchctl pods and nothing else (not the workers).
    selected = [
        d["metadata"]["name"]
        for d in overlay
        if d["kind"] == "Deployment"
        and service["spec"]["selector"].items()
        <= d["spec"]["template"]["metadata"]["labels"].items()
    ]
    assert selected == ["batchctl"]
    service_ports = {p["name"]: p for p in service["spec"]["ports"]}
    assert set(service_ports) == {"metrics", "autoscaler"}
    for p in service_ports.values():
        assert p["targetPort"] in ports and p["port"] == ports[p["targetPort"]]["containerPort"]
    pdb = one(overlay, "PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    replicas = one(overlay, "Deployment", "batchctl")["spec"]["replicas"]
    assert replicas == 2 and pdb["spec"]["minAvailable"] < replicas
    monitor = one(overlay, "ServiceMonitor")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= (
        service["metadata"]["labels"].items()
    )
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["metrics", "autoscaler"]
    assert all(e["path"] == "/metrics" for e in monitor["spec"]["endpoints"])


def test_network_policy_admits_the_metrics_ports_from_monitoring_only(
    overlay: list[Doc],
) -> None:
    policy = one(overlay, "NetworkPolicy")
    pod = batchctl_pod(overlay)
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= (
        pod["metadata"]["labels"].items()
    )
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    (rule,) = policy["spec"]["ingress"]
    assert rule["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    ]
    assert {p["port"] for p in rule["ports"]} == {"metrics", "autoscaler"}


def test_every_container_is_locked_down_probed_and_sized(overlay: list[Doc]) -> None:
    found = containers(overlay)
    assert len(found) == 6  # exporter, autoscaler, four workers
    for dep, c in found:
        pod = dep["spec"]["template"]["spec"]
        where = f"{dep['metadata']['name']}/{c['name']}"
        sc, psc = c["securityContext"], pod["securityContext"]
        assert sc["runAsNonRoot"] is True and psc["runAsNonRoot"] is True, where
        assert psc["runAsUser"] != 0, where
        assert sc["readOnlyRootFilesystem"] is True, where
        assert sc["allowPrivilegeEscalation"] is False, where
        assert sc["capabilities"] == {"drop": ["ALL"]}, where
        assert sc["seccompProfile"] == {"type": "RuntimeDefault"} == psc["seccompProfile"]
        assert "readinessProbe" in c, where
        # batchctl's own containers have a liveness probe; workers must not restart
        # on a ping over the broker (a Redis outage would kill the work in flight).
        assert ("livenessProbe" in c) == (c["name"] in ("exporter", "autoscaler")), where
        res = c["resources"]
        assert {"cpu", "memory"} <= set(res["requests"]) and "memory" in res["limits"], where


def mib(quantity: str) -> float:
    units = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024}
    return float(quantity[:-2]) * units[quantity[-2:]]


def test_memory_follows_the_measured_peak(overlay: list[Doc]) -> None:
    """Limits at least twice, requests at least once the peak RSS measured at 1,000
    queues (benchmarks/container_footprint.py writes benchmarks/container-footprint.json)."""
    measured = json.loads((ROOT / "benchmarks" / "container-footprint.json").read_text())
    pod = batchctl_pod(overlay)["spec"]
    for c in pod["containers"]:
        peak = measured["containers"][c["name"]]["peak_rss_mib"]
        res = c["resources"]
        assert mib(res["limits"]["memory"]) >= 2 * peak, c["name"]
        assert mib(res["requests"]["memory"]) >= peak, c["name"]


@pytest.mark.integration
def test_the_config_in_the_configmap_passes_config_check(
    overlay: list[Doc], tmp_path: Path
) -> None:
    cm = one(overlay, "ConfigMap", "batchctl-config")
    path = tmp_path / "batchctl.yml"
    path.write_text(cm["data"]["batchctl.yml"])
    res = subprocess.run(
        [BATCHCTL, "config", "check", str(path)], capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 0, res.stderr
    # The pods read it where the ConfigMap is mounted.
    pod = batchctl_pod(overlay)["spec"]
    volume = next(v for v in pod["volumes"] if v.get("configMap"))
    assert volume["configMap"]["name"] == cm["metadata"]["name"]
    for c in pod["containers"]:
        mount = next(m for m in c["volumeMounts"] if m["name"] == volume["name"])
        assert c["args"][c["args"].index("--config") + 1] == f"{mount['mountPath']}/batchctl.yml"


def test_the_broker_url_comes_from_an_existing_secret(overlay: list[Doc]) -> None:
    """No Secret in any file (it is created in the cluster, docs/deploy.md): every
    container that needs the URL takes it from the Secret batchctl-broker, by reference."""
    assert not [d for d in overlay if d["kind"] == "Secret"]
    for _, c in containers(overlay):
        env = {e["name"]: e for e in c["env"]}
        name = "BATCHCTL_BROKER_URL" if "batchctl" in c["image"] else "CELERY_BROKER_URL"
        ref = env[name]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": "batchctl-broker", "key": "url"}
        if "batchctl" in c["image"]:
            # The sentinels' own password, for Sentinel sites only: optional, so that a
            # Secret without the key (every other site) still starts the pods.
            ref = env["BATCHCTL_SENTINEL_PASSWORD"]["valueFrom"]["secretKeyRef"]
            assert ref == {"name": "batchctl-broker", "key": "sentinel_password", "optional": True}
    guide = (ROOT / "docs" / "deploy.md").read_text()
    assert "create secret generic batchctl-broker" in guide
    assert "--from-literal=sentinel_password=" in guide


def served_paths() -> dict[str, set[str]]:
    """Which paths each batchctl server answers (not 404), asked over HTTP."""
    import threading

    from prometheus_client import CollectorRegistry

    from autoscaler.backends.dryrun import DryRunBackend
    from autoscaler.loop import Autoscaler
    from autoscaler.server import AutoscalerServer
    from batchctl.config import parse_config
    from exporter.broker.redis.reader import RedisReader
    from exporter.collect import InProcessSource
    from exporter.http.server import ExporterApp

    cfg = parse_config(
        {"broker": {"url": "redis://127.0.0.1:9/0", "timeout_seconds": 0.2},
         "kubernetes": {"enabled": False}, "autoscaler": {"interval_seconds": 0.05}},
        env={},
    )  # fmt: skip
    source = InProcessSource(cfg, RedisReader(cfg.broker))
    exporter = ExporterApp(cfg, source)
    scaler = Autoscaler(cfg, source, DryRunBackend())
    autoscaler = AutoscalerServer(scaler, CollectorRegistry())
    out: dict[str, set[str]] = {}
    try:
        urls = {}
        for name, server in (("exporter", exporter), ("autoscaler", autoscaler)):
            host, port = server.listen("127.0.0.1:0")
            server.serve_in_thread()
            urls[name] = f"http://{host}:{port}"
        threading.Thread(target=scaler.run, daemon=True).start()
        source.collect()  # both ready: a first collection and a first tick
        scaler.ticked.wait(10)
        candidates = ("/metrics", "/healthz", "/readyz", "/status", "/livez", "/health")
        for name, url in urls.items():
            out[name] = {p for p in candidates if get(url + p)[0] == 200}
    finally:
        scaler.stop()
        exporter.shutdown()
        autoscaler.shutdown()
    return out


def test_probes_point_at_served_paths(overlay: list[Doc]) -> None:
    served = served_paths()
    assert served["exporter"] >= {"/healthz", "/readyz", "/metrics"}
    assert served["autoscaler"] >= {"/healthz", "/readyz", "/metrics"}
    pod = batchctl_pod(overlay)["spec"]
    for c in pod["containers"]:
        role = c["args"][c["args"].index("--config") - 1]
        assert role == c["name"] in ("exporter", "autoscaler")
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        listen = c["args"][c["args"].index("--listen") + 1]
        assert int(listen.rsplit(":", 1)[1]) in ports.values()
        probes = {k: c[k]["httpGet"] for k in ("livenessProbe", "readinessProbe")}
        assert probes["livenessProbe"]["path"] == "/healthz"
        assert probes["readinessProbe"]["path"] == "/readyz"
        for probe in probes.values():
            assert probe["port"] in ports and probe["path"] in served[role]


def test_workers_follow_the_config(overlay: list[Doc], cfg: Config) -> None:
    workers = {d["metadata"]["name"]: d for d in overlay if d["kind"] == "Deployment"}
    workers.pop("batchctl")
    assert sorted(workers) == sorted(b.deployment for b in cfg.batches)
    for b in cfg.batches:
        dep = workers[b.deployment]
        assert dep["spec"]["replicas"] == 0
        pod = dep["spec"]["template"]["spec"]
        assert pod["terminationGracePeriodSeconds"] == math.ceil(b.max_task_seconds) + 30
        (c,) = pod["containers"]
        cmd = c["command"]
        assert cmd[:4] == ["celery", "-A", "app", "worker"]
        options = cmd[: cmd.index("--")]
        assert options[options.index("-Q") + 1] == b.queue
        assert int(options[options.index("--concurrency") + 1]) == b.worker_concurrency
        assert int(options[options.index("--prefetch-multiplier") + 1]) == b.prefetch_multiplier
        # The settings after `--`, read by Celery's own parser as the worker reads them.
        app = Celery("app")
        app.config_from_cmdline(cmd[cmd.index("--") + 1 :], namespace="worker")
        assert app.conf.task_acks_late is True
        assert app.conf.task_reject_on_worker_lost is True
        soft = app.conf.worker_soft_shutdown_timeout
        assert b.max_task_seconds <= soft < pod["terminationGracePeriodSeconds"]
        env = {e["name"]: e for e in c["env"]}
        assert env["REMAP_SIGTERM"]["value"] == "SIGQUIT"
        # No broadcast per probe: a file the worker_ready signal writes.
        probe = c["readinessProbe"]["exec"]["command"]
        assert probe == ["test", "-e", "/tmp/celery-ready"]
        assert "inspect" not in shlex.join(probe)
        assert options[options.index("--hostname") + 1] == f"{b.queue}@%h"
        # Task events, for the busy map the exporter reads with events.enabled.
        assert ("-E" in options) == cfg.events.enabled


def test_rbac_names_the_configured_deployments(overlay: list[Doc], cfg: Config) -> None:
    role = one(overlay, "Role", "batchctl-scale")
    scale, *busy_map = role["rules"]
    assert scale["resources"] == ["deployments/scale"] and scale["verbs"] == ["patch"]
    assert scale["resourceNames"] == sorted(b.deployment for b in cfg.batches)
    # With events, exactly list and patch on pods (the busy map), and nothing more.
    pods = {"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "patch"]}
    assert busy_map == ([pods] if cfg.events.enabled else [])
    base_role = next(
        d for d in overlay if d["kind"] == "Role" and d["metadata"]["name"] == "batchctl"
    )
    assert not [r for r in base_role["rules"] if "deployments/scale" in r["resources"]]


@pytest.mark.integration
def test_prometheus_rule_holds_the_rules_promtool_accepts(
    overlay: list[Doc], cfg: Config, tmp_path: Path
) -> None:
    rule = one(overlay, "PrometheusRule")
    assert rule["spec"]["groups"] == yaml.safe_load(render_rules(cfg))["groups"]
    cm = one(overlay, "ConfigMap", "batchctl-rules")
    assert cm["metadata"]["labels"]["prometheus_rule"] == "1"
    assert cm["data"]["batchctl.rules.yml"] == render_rules(cfg)
    promtool = require_tool("promtool")
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    res = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    dashboard = one(overlay, "ConfigMap", "batchctl-dashboard")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"


@pytest.mark.integration
def test_the_example_overlay_is_rendered_from_its_config(tmp_path: Path) -> None:
    """k8s/overlays/example/batchctl is exactly what `batchctl render k8s` writes from
    the example's config (`make render`), run as a site runs it: the installed command,
    no environment, from the repository's root."""
    out = tmp_path / "rendered"
    res = subprocess.run(
        [BATCHCTL, "render", "k8s", "-c", "k8s/overlays/example/batchctl.yml",
         "--base", "k8s/base", "--image", "registry.example.com/platform/batchctl",
         "--output", str(out)],
        capture_output=True, text=True, timeout=120, env={"PATH": "/usr/bin:/bin"}, cwd=ROOT,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    committed = EXAMPLE / "batchctl"
    rendered = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert rendered == {
        p.relative_to(committed).as_posix() for p in committed.rglob("*") if p.is_file()
    }
    for rel in sorted(rendered):
        text = (out / rel).read_text()
        if rel == "kustomization.yaml":  # the base, relative to where it was written
            text = text.replace(os.path.relpath(K8S / "base", out), "../../../base")
        assert text == (committed / rel).read_text(), f"{rel} drifted: run `make render`"
