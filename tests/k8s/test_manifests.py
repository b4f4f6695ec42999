"""The manifests: render with kustomize, validate against the Kubernetes schema offline."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from batchctl.config import load_config
from tests.conftest import require_tool

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"


@pytest.fixture(scope="module")
def rendered() -> list[dict[str, Any]]:
    kubectl = require_tool("kubectl")
    out = subprocess.run(
        [kubectl, "kustomize", str(K8S)], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def test_every_object_is_schema_valid(rendered: list[dict[str, Any]]) -> None:
    kinds = sorted(d["kind"] for d in rendered)
    assert kinds == [
        "ConfigMap", "ConfigMap", "ConfigMap", "Deployment", "Role", "RoleBinding",
        "Service", "ServiceAccount",
    ]  # fmt: skip
    for doc in rendered:
        kubernetes_validate.validate(doc, "1.30", strict=True)
        assert doc["metadata"]["namespace"] == "court-listener"


def test_rbac_is_least_privilege_and_matches_the_config(rendered: list[dict[str, Any]]) -> None:
    cfg = load_config(K8S / "batchctl.yml", env={})
    (role,) = [d for d in rendered if d["kind"] == "Role"]
    rules = {tuple(r["resources"]): r for r in role["rules"]}
    assert set(rules) == {("deployments",), ("deployments/scale",)}
    assert rules[("deployments",)]["verbs"] == ["get", "list", "watch"]
    scale = rules[("deployments/scale",)]
    assert scale["verbs"] == ["get", "patch"]
    assert scale["resourceNames"] == [b.deployment for b in cfg.batches]


def test_pod_runs_exporter_and_autoscaler(rendered: list[dict[str, Any]]) -> None:
    (dep,) = [d for d in rendered if d["kind"] == "Deployment"]
    pod = dep["spec"]["template"]["spec"]
    containers = {c["name"]: c for c in pod["containers"]}
    assert set(containers) == {"exporter", "autoscaler"}
    assert "exporter" in containers["exporter"]["args"]
    assert "autoscaler" in containers["autoscaler"]["args"]
    for c in containers.values():
        env = {e["name"]: e for e in c["env"]}
        # The password comes from a Secret, never from the ConfigMap.
        assert "secretKeyRef" in env["BATCHCTL_BROKER_URL"]["valueFrom"]
    assert containers["exporter"]["ports"][0]["containerPort"] == 9808
    assert dep["spec"]["replicas"] == 1  # one autoscaler until leader election exists


def test_shipped_copies_do_not_drift() -> None:
    assert (K8S / "dashboards" / "batchctl.json").read_text() == (
        ROOT / "grafana" / "batchctl.json"
    ).read_text()
    assert (K8S / "rules" / "batchctl.rules.yml").read_text() == (
        ROOT / "alerts" / "batchctl.rules.yml"
    ).read_text()
