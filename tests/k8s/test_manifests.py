"""The manifests as a platform team applies them: kustomize renders, the schemas accept,
the pieces fit together (selectors, ports, probes), and they agree with the config."""

from __future__ import annotations

import base64
import json
import math
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from celery import Celery

from alerts.render import render_prometheus_rule, render_rules
from batchctl.config import Config, load_config
from tests.conftest import require_tool
from tests.k8s.kustomize import (
    K8S,
    ROOT,
    Doc,
    copy_tree,
    crd_validators,
    kustomize,
    one,
    validate,
)

BATCHCTL = str(Path(sys.executable).with_name("batchctl"))
PASSWORD = "s3cr3t-broker-password"


@pytest.fixture(scope="module")
def cfg() -> Config:
    return load_config(K8S / "base" / "batchctl.yml", env={})


@pytest.fixture(scope="module")
def overlay(tmp_path_factory: pytest.TempPathFactory) -> list[Doc]:
    """k8s/overlays/example after the documented copy step, in a copy of the tree."""
    tree = copy_tree(tmp_path_factory.mktemp("clone"), f"redis://:{PASSWORD}@redis:6379/0")
    return kustomize(tree / "overlays" / "example")


@pytest.fixture(scope="module")
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


def test_overlay_needs_the_documented_copy_step(tmp_path: Path) -> None:
    tree = copy_tree(tmp_path, broker_url=None)  # a clean clone: no broker.env
    kubectl = require_tool("kubectl")
    out = subprocess.run(
        [kubectl, "kustomize", str(tree / "overlays" / "example")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode != 0 and "broker.env" in out.stderr
    assert (ROOT / ".gitignore").read_text().count("k8s/overlays/*/broker.env") == 1


def test_every_object_is_schema_valid(overlay: list[Doc], base: list[Doc]) -> None:
    kinds = sorted(d["kind"] for d in overlay)
    assert kinds == sorted(
        ["ConfigMap"] * 2 + ["Deployment"] * 5 + ["NetworkPolicy", "PodDisruptionBudget",
         "PrometheusRule", "Role", "RoleBinding", "Secret", "Service", "ServiceAccount",
         "ServiceMonitor"]
    )  # fmt: skip
    for doc in overlay + base:
        validate(doc)
    for doc in overlay:
        assert doc["metadata"]["namespace"] == "court-listener", doc["metadata"]["name"]
        # docs/deploy.md removes batchctl (and not the workers) by this label.
        label = doc["metadata"].get("labels", {}).get("app.kubernetes.io/name")
        worker = doc["metadata"]["name"].startswith("celery-batch")
        assert (label == "celery-worker") if worker else (label == "batchctl"), doc["kind"]
    binding = one(overlay, "RoleBinding")
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


def test_no_secret_value_outside_the_secret(overlay: list[Doc]) -> None:
    secret = one(overlay, "Secret", "batchctl-broker")
    assert PASSWORD in base64.b64decode(secret["data"]["url"]).decode()
    others = yaml.safe_dump_all([d for d in overlay if d["kind"] != "Secret"])
    assert PASSWORD not in others
    assert base64.b64encode(PASSWORD.encode()).decode()[:16] not in others
    # Every container that needs the URL takes it from the Secret, by reference.
    for _, c in containers(overlay):
        env = {e["name"]: e for e in c["env"]}
        name = "BATCHCTL_BROKER_URL" if "batchctl" in c["image"] else "CELERY_BROKER_URL"
        ref = env[name]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": secret["metadata"]["name"], "key": "url"}


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
    from tests.exporter.test_server import get

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
        words = shlex.split(c["readinessProbe"]["exec"]["command"][-1])
        assert words[words.index("--destination") + 1] == f"{b.queue}@$HOSTNAME"
        assert "ping" in words and "app" in words
        assert options[options.index("--hostname") + 1] == f"{b.queue}@%h"


def test_rbac_names_the_configured_deployments(base: list[Doc], cfg: Config) -> None:
    role = one(base, "Role")
    scale = next(r for r in role["rules"] if r["resources"] == ["deployments/scale"])
    assert scale["resourceNames"] == [b.deployment for b in cfg.batches]


def render_dashboard(cfg: Config) -> str:
    from grafana.dashboard import render_dashboard as render

    return render(cfg)


@pytest.mark.parametrize(
    ("path", "render"),
    [
        ("components/prometheus-operator/prometheusrule.yaml", render_prometheus_rule),
        ("components/rules-configmap/batchctl.rules.yml", render_rules),
        ("base/dashboards/batchctl.json", render_dashboard),
    ],
)
def test_rendered_files_do_not_drift(path: str, render: Any, cfg: Config) -> None:
    """Rendered from k8s/base/batchctl.yml by `make render`."""
    assert (K8S / path).read_text() == render(cfg), f"k8s/{path} drifted: run `make render`"


def test_prometheus_rule_holds_the_rules_promtool_accepts(
    overlay: list[Doc], cfg: Config, tmp_path: Path
) -> None:
    rule = one(overlay, "PrometheusRule")
    assert rule["spec"]["groups"] == yaml.safe_load(render_rules(cfg))["groups"]
    promtool = require_tool("promtool")
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    res = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_rules_configmap_component_is_the_alternative(tmp_path: Path, cfg: Config) -> None:
    tree = copy_tree(tmp_path, broker_url=None)
    site = tree / "overlays" / "plain"
    site.mkdir()
    (site / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        "namespace: batch\nresources: [../../base]\n"
        "components: [../../components/rules-configmap]\n"
    )
    docs = kustomize(site)
    cm = one(docs, "ConfigMap", "batchctl-rules")
    assert cm["metadata"]["labels"]["prometheus_rule"] == "1"
    assert cm["data"]["batchctl.rules.yml"] == render_rules(cfg)
    assert not [d for d in docs if d["kind"] in ("PrometheusRule", "ServiceMonitor")]
    dashboard = one(docs, "ConfigMap", "batchctl-dashboard")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    for doc in docs:
        validate(doc)


def test_make_render_commands_write_the_committed_files() -> None:
    for fmt, path in (
        ("prometheusrule", "components/prometheus-operator/prometheusrule.yaml"),
        ("rules", "components/rules-configmap/batchctl.rules.yml"),
    ):
        res = subprocess.run(
            [BATCHCTL, "alerts", "render", "-c", str(K8S / "base" / "batchctl.yml"),
             "--format", fmt],
            capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"},
        )  # fmt: skip
        assert res.returncode == 0, res.stderr
        assert res.stdout == (K8S / path).read_text()
