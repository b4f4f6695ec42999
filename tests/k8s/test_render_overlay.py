"""`batchctl render k8s`: a site's own overlay, from its own config, by the installed command.

A site with other queue and Deployment names (and a Prometheus elsewhere) renders its
overlay outside any checkout, from a copy of the base; it builds with kubectl kustomize,
every object validates strictly, and the Role names exactly its Deployments.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from alerts.render import render_rules
from batchctl import __version__
from batchctl.claims.lease_record import lease_name
from batchctl.config import parse_config
from tests.support.kustomize import K8S, Doc, kustomize, one, validate

pytestmark = pytest.mark.integration  # real servers, subprocesses or tools

BATCHCTL = str(Path(sys.executable).with_name("batchctl"))
SITE = {
    "kubernetes": {"enabled": True, "namespace": "payments"},
    "batches": [
        {"queue": "reports.nightly", "deployment": "worker-reports", "max_replicas": 8},
        {"queue": "imports", "deployment": "worker-imports", "thresholds": [50, 200, 400]},
        {"queue": "backfill", "deployment": "worker-backfill", "autoscale": False},
    ],
    "other_queues": [{"queue": "celery", "thresholds": [2000, 5000, 10000]}],
    "alerts": {
        "autoscaler_selector": 'job="batchctl-autoscaler"',
        "runbook_url": "https://wiki.example.com/batchctl/{alert}",
    },
}


def render(tmp: Path, *extra: str, config: dict | None = None) -> subprocess.CompletedProcess[str]:
    """The installed command, as a site runs it: in a directory of its own, with its
    config and a copy of the base (no checkout, no environment but PATH)."""
    site = tmp / "site"
    if not (site / "base").exists():
        shutil.copytree(K8S / "base", site / "base")
    (site / "batchctl.yml").write_text(yaml.safe_dump(config or SITE))
    argv = [BATCHCTL, "render", "k8s", "-c", "batchctl.yml", "--base", "base",
            "--image", "registry.example.com/payments/batchctl", *extra]  # fmt: skip
    if "--output" not in extra:
        argv += ["--output", "overlay"]
    return subprocess.run(
        argv, cwd=site, capture_output=True, text=True, timeout=120, env={"PATH": "/usr/bin:/bin"}
    )


@pytest.fixture(scope="module")
def docs(tmp_path_factory: pytest.TempPathFactory) -> list[Doc]:
    tmp = tmp_path_factory.mktemp("render")
    res = render(tmp, "--prometheus-namespace", "observability")
    assert res.returncode == 0, res.stderr
    assert "note: alerts.runbook_url" not in res.stderr  # the site set its own
    return kustomize(tmp / "site" / "overlay")


def test_the_overlay_builds_and_validates_strictly(docs: list[Doc]) -> None:
    kinds = sorted(d["kind"] for d in docs)
    # Roles: batchctl, batchctl-scale, and with the claims in Leases (the pod's default)
    # batchctl-claims (the service account's) and batchctl-viewer, -claimer, -admin.
    assert kinds == sorted(
        ["ConfigMap"] * 3 + ["Deployment", "NetworkPolicy", "PodDisruptionBudget",
         "PrometheusRule"] + ["Role"] * 6 + ["RoleBinding"] * 3 + ["Service",
         "ServiceAccount", "ServiceMonitor"]
    )  # fmt: skip
    for doc in docs:
        validate(doc)
        assert doc["metadata"]["namespace"] == "payments", doc["metadata"]["name"]
        assert doc["metadata"]["labels"]["app.kubernetes.io/name"] == "batchctl"
    pod = one(docs, "Deployment", "batchctl")["spec"]["template"]["spec"]
    images = {c["image"] for c in pod["containers"]}
    assert images == {f"registry.example.com/payments/batchctl:{__version__}"}


def test_the_role_names_exactly_the_sites_deployments(docs: list[Doc]) -> None:
    role = one(docs, "Role", "batchctl-scale")
    assert role["rules"] == [
        {
            "apiGroups": ["apps"],
            "resources": ["deployments/scale"],
            "verbs": ["patch"],
            "resourceNames": ["worker-backfill", "worker-imports", "worker-reports"],
        }
    ]
    binding = one(docs, "RoleBinding", "batchctl-scale")
    assert binding["roleRef"]["name"] == "batchctl-scale"
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "batchctl", "namespace": "payments"}
    ]


def test_config_rules_and_dashboard_are_the_sites(docs: list[Doc]) -> None:
    cfg = parse_config(SITE, env={})
    config = one(docs, "ConfigMap", "batchctl-config")
    assert yaml.safe_load(config["data"]["batchctl.yml"]) == SITE
    assert config["metadata"]["name"] != "batchctl-config"  # a hash suffix rolls the pods
    pod = one(docs, "Deployment", "batchctl")["spec"]["template"]["spec"]
    (volume,) = [v for v in pod["volumes"] if "configMap" in v]
    assert volume["configMap"]["name"] == config["metadata"]["name"]
    rules = one(docs, "ConfigMap", "batchctl-rules")["data"]["batchctl.rules.yml"]
    assert rules == render_rules(cfg)
    assert 'queue=~"imports"} > 50' in rules and 'queue=~"celery"} > 2000' in rules
    assert "https://wiki.example.com/batchctl/CeleryBrokerDown" in rules
    assert one(docs, "PrometheusRule")["spec"]["groups"] == yaml.safe_load(rules)["groups"]
    dashboard = one(docs, "ConfigMap", "batchctl-dashboard")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    policy = one(docs, "NetworkPolicy")
    assert policy["spec"]["ingress"][0]["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "observability"}}}
    ]


def test_without_the_prometheus_operator_and_with_a_remote_base(tmp_path: Path) -> None:
    res = render(tmp_path, "--no-prometheus-operator")
    assert res.returncode == 0, res.stderr
    docs = kustomize(tmp_path / "site" / "overlay")
    assert not [d for d in docs if d["kind"] in ("PrometheusRule", "ServiceMonitor")]
    one(docs, "ConfigMap", "batchctl-rules")
    # Rendering again with a remote base rewrites the overlay in place (stale files of
    # the earlier render go, nothing else is touched).
    (tmp_path / "site" / "overlay" / "mine.yaml").write_text("kept: true\n")
    url = "https://github.com/example/batchctl//k8s/base?ref=v" + __version__
    res = subprocess.run(
        [BATCHCTL, "render", "k8s", "-c", "batchctl.yml", "--base", url, "--image",
         "registry.example.com/payments/batchctl@sha256:" + "a" * 64, "--output", "overlay"],
        cwd=tmp_path / "site", capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    k = yaml.safe_load((tmp_path / "site" / "overlay" / "kustomization.yaml").read_text())
    assert k["resources"][0] == url
    assert k["images"] == [
        {"name": "batchctl", "newName": "registry.example.com/payments/batchctl",
         "digest": "sha256:" + "a" * 64}
    ]  # fmt: skip
    assert (tmp_path / "site" / "overlay" / "prometheusrule.yaml").exists()
    assert (tmp_path / "site" / "overlay" / "mine.yaml").exists()


# A Sentinel site that wrote the sentinels' password into its config.
SENTINEL_SITE = {
    **SITE,
    "broker": {"url": "sentinel://s0:26379", "sentinel_kwargs": {"password": "hunter2"}},
}
BAD = {
    "no namespace": ({**SITE, "kubernetes": {"enabled": True}}, (), "--namespace: required"),
    "kubernetes off": (
        {**SITE, "kubernetes": {"enabled": False, "namespace": "payments"}},
        (),
        "kubernetes.enabled",
    ),
    "base not a kustomization": (SITE, ("--base", "nowhere"), "--base nowhere"),
    "bad image": (SITE, ("--image", "UPPER CASE"), "--image UPPER CASE"),
    "bad config": ({**SITE, "thresholds": [3, 2, 1]}, (), "thresholds"),
    "a broker Secret that is no DNS subdomain": (
        SITE,
        ("--broker-secret", "Redis_Credentials"),
        "--broker-secret Redis_Credentials: not a Secret name",
    ),
    "a broker Secret key a Secret cannot hold": (
        SITE,
        ("--broker-secret", "redis-credentials", "--broker-secret-key", "broker/url"),
        "--broker-secret-key broker/url: not a Secret key",
    ),
    "a password in the config": (
        {**SITE, "broker": {"url": "redis://:hunter2@redis:6379/0"}},
        (),
        "broker.url: holds a password",
    ),
    "the sentinels' password in the config": (
        SENTINEL_SITE,
        (),
        "broker.sentinel_kwargs.password: holds a password",
    ),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_exits_2_naming_the_problem(case: str, tmp_path: Path) -> None:
    config, extra, message = BAD[case]
    res = render(tmp_path, *extra, config=config)  # a repeated option: the last wins
    assert res.returncode == 2, res.stdout + res.stderr
    assert message in res.stderr
    assert "Traceback" not in res.stderr
    assert "hunter2" not in res.stdout + res.stderr
    assert not (tmp_path / "site" / "overlay").exists()


def test_the_sentinels_password_is_one_line_naming_the_secrets_key(tmp_path: Path) -> None:
    res = render(tmp_path, config=SENTINEL_SITE)
    assert res.returncode == 2, res.stdout + res.stderr
    (line,) = res.stderr.strip().splitlines()
    assert "broker.sentinel_kwargs.password" in line
    assert "Secret batchctl-broker (key sentinel_password" in line
    assert "hunter2" not in res.stdout + res.stderr


def test_the_claim_roles_name_the_sites_leases_and_service(docs: list[Doc]) -> None:
    """Every rule that can name its objects does: the batches' claim Leases (a queue name
    a Lease name cannot hold gets a hashed one), the ring, the exporter's Service."""
    leases = sorted(lease_name(q) for q in ("reports.nightly", "imports", "backfill"))
    assert "batchctl-claim-imports" in leases and "batchctl-claim-reports.nightly" not in leases
    roles = {d["metadata"]["name"]: d["rules"] for d in docs if d["kind"] == "Role"}
    grants = {
        name: {(v, r["resources"][0], tuple(r.get("resourceNames", ()))) for r in rules
               for v in r["verbs"]}
        for name, rules in roles.items()
    }  # fmt: skip
    viewer, claimer, admin = (grants[f"batchctl-{r}"] for r in ("viewer", "claimer", "admin"))
    assert viewer < claimer < admin
    assert ("update", "leases", tuple(leases)) in claimer - viewer
    assert ("create", "leases", ()) in claimer
    assert admin - claimer == {("force", "leases", tuple(leases))}
    assert ("get", "services/proxy", ("batchctl:9808",)) in viewer
    assert ("update", "leases", tuple(leases)) in grants["batchctl-claims"]
    binding = one(docs, "RoleBinding", "batchctl-claims")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "batchctl", "namespace": "payments"}
    ]
    # People are bound by the site, never by the overlay.
    assert not [d for d in docs if d["kind"] == "RoleBinding"
                and d["roleRef"]["name"] in ("batchctl-viewer", "batchctl-claimer",
                                             "batchctl-admin")]  # fmt: skip


def test_the_admission_policy_is_apart_and_valid(tmp_path: Path) -> None:
    """Cluster-scoped (a cluster admin applies it): beside the overlay, not in it; valid
    admissionregistration.k8s.io/v1 for the oldest Kubernetes we support."""
    res = render(tmp_path)
    assert res.returncode == 0, res.stderr
    overlay = tmp_path / "site" / "overlay"
    kustomization = yaml.safe_load((overlay / "kustomization.yaml").read_text())
    assert "admission-claims.yaml" not in kustomization["resources"]
    docs = [d for d in yaml.safe_load_all((overlay / "admission-claims.yaml").read_text()) if d]
    assert [d["kind"] for d in docs] == [
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
    ]
    for doc in docs:
        validate(doc)
        assert doc["metadata"]["name"] == "batchctl-claims-payments"
        assert "namespace" not in doc["metadata"]
    policy, binding = docs
    exempt = policy["spec"]["matchConditions"][0]["expression"]
    assert "system:serviceaccount:payments:batchctl" in exempt
    assert binding["spec"]["matchResources"]["namespaceSelector"] == {
        "matchLabels": {"kubernetes.io/metadata.name": "payments"}
    }


def test_a_site_that_keeps_claims_in_redis_gets_no_claim_roles(tmp_path: Path) -> None:
    res = render(tmp_path, config={**SITE, "claims": {"store": "redis"}})
    assert res.returncode == 0, res.stderr
    overlay = tmp_path / "site" / "overlay"
    assert not (overlay / "rbac-claims.yaml").exists()
    assert not (overlay / "admission-claims.yaml").exists()
    names = {d["metadata"]["name"] for d in kustomize(overlay) if d["kind"] == "Role"}
    assert names == {"batchctl", "batchctl-scale"}


def test_the_api_servers_addresses_reach_the_exporter(tmp_path: Path) -> None:
    """--apiserver-cidr: the service proxy's connections (the CLI's status, the claims in
    Kubernetes) are admitted on the exporter's port, beside Prometheus' rule."""
    res = render(tmp_path, "--apiserver-cidr", "10.0.0.0/24", "--apiserver-cidr", "192.0.2.7")
    assert res.returncode == 0, res.stderr
    assert "--apiserver-cidr" not in res.stderr  # no note: it was given
    policy = one(kustomize(tmp_path / "site" / "overlay"), "NetworkPolicy")
    prometheus, apiserver = policy["spec"]["ingress"]
    assert prometheus["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    ]
    assert apiserver == {
        "from": [{"ipBlock": {"cidr": "10.0.0.0/24"}}, {"ipBlock": {"cidr": "192.0.2.7/32"}}],
        "ports": [{"port": "metrics", "protocol": "TCP"}],
    }
    validate(policy)
    res = render(tmp_path, "--apiserver-cidr", "10.0.0.300/8")
    assert res.returncode == 2 and "--apiserver-cidr 10.0.0.300/8: not an address" in res.stderr


def secret_refs(docs: list[Doc]) -> dict[tuple[str, str], dict[str, object]]:
    """(container, variable) -> its secretKeyRef, of every env entry of the Deployment
    batchctl that takes one."""
    pod = one(docs, "Deployment", "batchctl")["spec"]["template"]["spec"]
    return {
        (c["name"], e["name"]): e["valueFrom"]["secretKeyRef"]
        for c in pod.get("initContainers", []) + pod["containers"]
        for e in c.get("env", [])
        if "secretKeyRef" in e.get("valueFrom", {})
    }


def test_the_broker_secret_is_the_sites_own(tmp_path: Path, docs: list[Doc]) -> None:
    """--broker-secret/--broker-secret-key: every secretKeyRef of the built Deployment
    names the site's Secret (the URL under its key, the sentinels' password under
    sentinel_password, still optional); nothing else of the Deployment changes."""
    res = render(tmp_path, "--prometheus-namespace", "observability", "--broker-secret",
                 "redis-credentials.payments", "--broker-secret-key", "broker_url")  # fmt: skip
    assert res.returncode == 0, res.stderr
    built = kustomize(tmp_path / "site" / "overlay")
    for doc in built:
        validate(doc)
    refs = secret_refs(built)
    assert set(refs) == {
        (c, v) for c in ("exporter", "autoscaler")
        for v in ("BATCHCTL_BROKER_URL", "BATCHCTL_SENTINEL_PASSWORD")
    }  # fmt: skip
    assert {str(r["name"]) for r in refs.values()} == {"redis-credentials.payments"}
    for container in ("exporter", "autoscaler"):
        assert refs[(container, "BATCHCTL_BROKER_URL")] == {
            "name": "redis-credentials.payments", "key": "broker_url"
        }  # fmt: skip
        assert refs[(container, "BATCHCTL_SENTINEL_PASSWORD")] == {
            "name": "redis-credentials.payments", "key": "sentinel_password", "optional": True
        }  # fmt: skip
    # The rest as without the option: same objects, same Deployment but for those refs.
    assert sorted((d["kind"], d["metadata"]["name"]) for d in built) == sorted(
        (d["kind"], d["metadata"]["name"]) for d in docs
    )
    mine, default = one(built, "Deployment", "batchctl"), one(docs, "Deployment", "batchctl")
    for c in mine["spec"]["template"]["spec"]["containers"]:
        for e in c["env"]:
            if "secretKeyRef" in e.get("valueFrom", {}):
                e["valueFrom"]["secretKeyRef"]["name"] = "batchctl-broker"
                if e["name"] == "BATCHCTL_BROKER_URL":
                    e["valueFrom"]["secretKeyRef"]["key"] = "url"
    # A strategic merge puts the patched entries first: env is compared by name (no
    # value of the base refers to another with $(VAR), where order would matter).
    for deployment in (mine, default):
        for c in deployment["spec"]["template"]["spec"]["containers"]:
            assert "$(" not in str(c["env"])
            c["env"] = sorted(c["env"], key=lambda e: e["name"])
    assert mine == default


def test_without_the_option_the_base_secret_is_read(tmp_path: Path, docs: list[Doc]) -> None:
    """No --broker-secret: no patch in the overlay, the base's batchctl-broker (key url)."""
    refs = secret_refs(docs)
    assert len(refs) == 4
    assert {(str(r["name"]), str(r["key"])) for r in refs.values()} == {
        ("batchctl-broker", "url"), ("batchctl-broker", "sentinel_password")
    }  # fmt: skip
    res = render(tmp_path, "--broker-secret", "batchctl-broker", "--broker-secret-key", "url")
    assert res.returncode == 0, res.stderr
    overlay = tmp_path / "site" / "overlay"
    assert not (overlay / "broker-secret.yaml").exists()
    assert "patches" not in yaml.safe_load((overlay / "kustomization.yaml").read_text())
