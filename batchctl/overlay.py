"""`batchctl render k8s`: a complete kustomize overlay for one site, from its config.

The base (k8s/base) holds batchctl itself and nothing a site edits; everything that
depends on the site is rendered here from its config, by the installed package (the
image included: no development checkout, no `make`):

    kustomization.yaml       the base from REF (a path or a remote git URL), the
                             namespace, the image, and what follows
    batchctl.yml             the site's config, as given (a ConfigMap with a hash
                             suffix: a change rolls the pods)
    rbac-scale.yaml          a Role whose resourceNames are the site's Deployments
                             (deployments/scale patch), with Celery's events
                             (events.enabled) list and patch on pods (the busy map),
                             and its RoleBinding
    rbac-claims.yaml         with the claims in Leases (the default in the pod): the
                             Roles batchctl-viewer, -claimer, -admin for people, and
                             the service account's batchctl-claims (batchctl/access.py)
    admission-claims.yaml    the ValidatingAdmissionPolicy on the claim Leases and its
                             binding: cluster-scoped, not in the kustomization (a
                             cluster admin applies it with kubectl apply -f)
    batchctl.rules.yml       the alert rules, as a ConfigMap (label prometheus_rule)
    prometheusrule.yaml      the same rules as a PrometheusRule  } with the
    servicemonitor.yaml      both metrics ports                  } prometheus-operator
    dashboards/batchctl.json the Grafana dashboard (ConfigMap, label grafana_dashboard)
    networkpolicy-prometheus.yaml  where Prometheus runs, when not in `monitoring`, and
                             the API server's addresses (--apiserver-cidr: its
                             service proxy reaches the exporter for the CLI)
    broker-secret.yaml       with --broker-secret/--broker-secret-key: both containers
                             read the broker URL (and the sentinels' password) from
                             the site's own Secret instead of batchctl-broker

The output is meant to be committed (a GitOps repository renders it in CI and checks
that nothing drifted) and never edited: a site's own changes go into a kustomization
of its own that takes this directory as a resource (docs/deploy.md).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from alerts.render import dump, render_prometheus_rule, render_rules
from batchctl import __version__
from batchctl.access import (
    ADMISSION_NOTE,
    RBAC_NOTE,
    admission_policy,
    claims_in_cluster,
    people_roles,
    service_account_role,
)
from batchctl.config import Config
from batchctl.config.written import committed_secrets
from batchctl.overlay_objects import (
    AUTOSCALER_JOB,
    BROKER_SECRET,
    BROKER_SECRET_KEY,
    Obj,
    OverlayError,
    broker_secret_patch,
    check_broker_secret,
    cidrs,
    networkpolicy,
    scale_rbac,
    servicemonitor,
)

__all__ = ["AUTOSCALER_JOB", "OverlayError", "Site", "notes", "render_overlay", "write_overlay"]

# The image name the base's containers use; the overlay points it at the site's registry.
IMAGE = "batchctl"
_REMOTE = re.compile(r"^(?:[a-z][a-z0-9+.-]*://|git@|github\.com/|gitlab\.com/)")
# IMAGE[:TAG][@DIGEST], the registry's port allowed in the name.
_IMAGE = re.compile(r"^(?P<name>[a-z0-9][a-z0-9._/:-]*?)(?::(?P<tag>[\w][\w.-]{0,127}))?"
                    r"(?:@(?P<digest>sha256:[0-9a-f]{64}))?\Z")  # fmt: skip
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\Z")

HEADER = (
    "# Rendered by `batchctl render k8s` (batchctl {version}) from the site's config: do not\n"
    "# edit. Change batchctl.yml (or the command's options) and render again; put your own\n"
    "# changes in a kustomization of your own that takes this directory as a resource.\n"
)


@dataclass(frozen=True)
class Site:
    """What the overlay needs beyond the config."""

    base: str  # REF as written in the kustomization: a relative path or a remote URL
    namespace: str
    image: str  # IMAGE[:TAG][@DIGEST]; no tag: this version's
    prometheus_namespace: str = "monitoring"
    prometheus_operator: bool = True
    # The API server's addresses, admitted to the exporter's port: its service proxy
    # (the CLI's status with the claims in Kubernetes) connects from them.
    apiserver_cidrs: tuple[str, ...] = ()
    # The site's own Secret holding the broker URL (under `broker_secret_key`) and, with
    # Sentinel, the key sentinel_password; the base reads batchctl-broker, key url.
    broker_secret: str = BROKER_SECRET
    broker_secret_key: str = BROKER_SECRET_KEY


def base_ref(ref: str, output: Path) -> str:
    """REF as the kustomization in `output` must write it: a remote URL unchanged, a
    local directory relative to `output`. Raises OverlayError."""
    if _REMOTE.match(ref):
        return ref
    path = Path(ref)
    if not (path / "kustomization.yaml").is_file():
        raise OverlayError(
            f"--base {ref}: not a directory with a kustomization.yaml, nor a remote URL "
            "(e.g. https://github.com/ORG/batchctl//k8s/base?ref=v0.3.0)"
        )
    return Path(os.path.relpath(path.resolve(), output.resolve())).as_posix()


def namespace_of(cfg: Config, given: str | None) -> str:
    """--namespace, else kubernetes.namespace when the config sets it. Raises OverlayError."""
    ns = given or (cfg.kubernetes.namespace if "namespace" in cfg.kubernetes.model_fields_set
                   else None)  # fmt: skip
    if ns is None:
        raise OverlayError(
            "--namespace: required (or kubernetes.namespace in the config): the namespace "
            "of the Celery workers, where batchctl runs"
        )
    if not _DNS_LABEL.match(ns):
        raise OverlayError(f"--namespace {ns}: not a Kubernetes namespace name")
    return ns


def _image(image: str) -> dict[str, str]:
    m = _IMAGE.match(image)
    if m is None:
        raise OverlayError(
            f"--image {image}: expected REGISTRY/NAME[:TAG][@sha256:DIGEST], e.g. "
            f"registry.example.com/platform/batchctl:{__version__}"
        )
    entry = {"name": IMAGE, "newName": m["name"]}
    if m["digest"]:
        entry["digest"] = m["digest"]
    else:
        entry["newTag"] = m["tag"] or __version__
    return entry


def render_overlay(cfg: Config, config_text: str, site: Site) -> dict[str, str]:
    """relative path -> text of every file of the overlay (pure: nothing is written).
    Raises OverlayError for an option or config that would not deploy."""
    if not cfg.kubernetes.enabled:
        raise OverlayError(
            "kubernetes.enabled is false: the overlay runs batchctl in Kubernetes; enable it"
        )
    if not _DNS_LABEL.match(site.prometheus_namespace):
        raise OverlayError(
            f"--prometheus-namespace {site.prometheus_namespace}: not a namespace name"
        )
    check_broker_secret(site.broker_secret, site.broker_secret_key)
    problems = committed_secrets(
        yaml.safe_load(config_text), secret=site.broker_secret, key=site.broker_secret_key
    )
    if problems:
        raise OverlayError("; ".join(problems))
    shown = _as_scraped(cfg, site)
    files: dict[str, str] = {
        "batchctl.yml": config_text,
        "rbac-scale.yaml": _scale_rbac(cfg, site.namespace),
        "batchctl.rules.yml": render_rules(shown),
        "dashboards/batchctl.json": _dashboard(shown),
    }
    resources = [site.base, "rbac-scale.yaml"]
    if claims_in_cluster(cfg):
        files |= _claims_access(cfg, site.namespace)
        # Not a resource of the overlay: cluster-scoped, it takes a cluster admin, who
        # applies it apart (kubectl apply -f admission-claims.yaml; docs/deploy.md).
        resources += ["rbac-claims.yaml"]
    if site.prometheus_operator:
        files["prometheusrule.yaml"] = render_prometheus_rule(shown)
        files["servicemonitor.yaml"] = _rendered(servicemonitor())
        resources += ["prometheusrule.yaml", "servicemonitor.yaml"]
    patches = []
    if site.prometheus_namespace != "monitoring" or site.apiserver_cidrs:
        files["networkpolicy-prometheus.yaml"] = _rendered(
            networkpolicy(site.prometheus_namespace, cidrs(site.apiserver_cidrs))
        )
        patches.append({"path": "networkpolicy-prometheus.yaml"})
    if (site.broker_secret, site.broker_secret_key) != (BROKER_SECRET, BROKER_SECRET_KEY):
        # The site's own Secret: both containers read it instead of batchctl-broker.
        files["broker-secret.yaml"] = _rendered(
            broker_secret_patch(site.broker_secret, site.broker_secret_key)
        )
        patches.append({"path": "broker-secret.yaml"})
    kustomization: dict[str, Any] = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": site.namespace,
        "resources": resources,
        "configMapGenerator": [
            # The hash suffix rolls the pods when the config changes.
            {"name": "batchctl-config", "files": ["batchctl.yml"]},
            {
                "name": "batchctl-dashboard",
                "files": ["dashboards/batchctl.json"],
                "options": {"disableNameSuffixHash": True, "labels": {"grafana_dashboard": "1"}},
            },
            {
                "name": "batchctl-rules",
                "files": ["batchctl.rules.yml"],
                "options": {"disableNameSuffixHash": True, "labels": {"prometheus_rule": "1"}},
            },
        ],
        "labels": [
            {
                "pairs": {
                    "app.kubernetes.io/name": "batchctl",
                    "app.kubernetes.io/part-of": "batchctl",
                },
                "includeSelectors": False,
            }
        ],
        "images": [_image(site.image)],
    }
    if patches:
        kustomization["patches"] = patches
    files["kustomization.yaml"] = HEADER.format(version=__version__) + dump(kustomization)
    return files


def _rendered(*objs: Obj) -> str:
    """The objects as one YAML file of the overlay, under the do-not-edit header."""
    return HEADER.format(version=__version__) + "---\n".join(dump(o) for o in objs)


def _as_scraped(cfg: Config, site: Site) -> Config:
    """The config the rules and the dashboard are rendered with. With the Prometheus
    operator the rendered ServiceMonitor scrapes the autoscaler under a job of its own
    (AUTOSCALER_JOB); a site that did not choose `alerts.autoscaler_selector` gets that
    job, or the autoscaler's alerts and panels would select nothing."""
    alerts = cfg.alerts
    if not site.prometheus_operator or "autoscaler_selector" in alerts.model_fields_set:
        return cfg
    selector = f'job="{AUTOSCALER_JOB}"'
    return cfg.model_copy(
        update={"alerts": alerts.model_copy(update={"autoscaler_selector": selector})}
    )


def _scale_rbac(cfg: Config, namespace: str) -> str:
    objs = scale_rbac(cfg, namespace)
    if not objs:  # no batch: nothing to scale, and a Role may not name nothing
        return _rendered() + "# No batches in the config: nothing to scale, no Role.\n"
    return _rendered(*objs)


def _claims_access(cfg: Config, namespace: str) -> dict[str, str]:
    """The claims' Roles (people's and the service account's) and the admission policy."""
    head = HEADER.format(version=__version__)
    people = people_roles(cfg)
    own = service_account_role(cfg, namespace)
    rbac = "---\n".join(dump(d) for d in [*people, *own])
    policy = "---\n".join(dump(d) for d in admission_policy(namespace))
    return {
        "rbac-claims.yaml": head + RBAC_NOTE + rbac,
        "admission-claims.yaml": head + ADMISSION_NOTE + policy,
    }


def _dashboard(cfg: Config) -> str:
    from grafana.dashboard import render_dashboard

    return render_dashboard(cfg)


def notes(cfg: Config, site: Site) -> list[str]:
    """What the site should know about the overlay it got (printed, not written)."""
    out = []
    if "runbook_url" not in cfg.alerts.model_fields_set:
        out.append(
            "alerts.runbook_url is the default (the exporter's /runbooks/, reached with "
            "`kubectl port-forward svc/batchctl 9808`): set it to where your on-call reads "
            "runbooks before the alerts go to people"
        )
    if claims_in_cluster(cfg) and not site.apiserver_cidrs:
        out.append(
            "the CLI reads the exporter through the API server's service proxy, which the "
            "NetworkPolicy admits only from --apiserver-cidr (render again with your "
            "control plane's addresses where NetworkPolicy is enforced; docs/deploy.md)"
        )
    if claims_in_cluster(cfg):
        out.append(
            f"claims are Leases in {site.namespace}: bind people to batchctl-viewer, "
            f"batchctl-claimer or batchctl-admin (kubectl -n {site.namespace} create "
            "rolebinding TEAM-claims --role=batchctl-claimer --group=TEAM); "
            "admission-claims.yaml is cluster-scoped (docs/deploy.md)"
        )
    if (
        site.prometheus_operator
        and AUTOSCALER_JOB not in _as_scraped(cfg, site).alerts.autoscaler_selector
    ):
        out.append(
            f'alerts.autoscaler_selector does not select job="{AUTOSCALER_JOB}", the job the '
            "ServiceMonitor gives the autoscaler: its alerts would never fire"
        )
    return out


def write_overlay(files: dict[str, str], output: Path) -> list[Path]:
    """Write the files under `output` (created if needed); returns what was written.
    Files of an earlier render that this one does not produce are removed, so the
    directory is exactly the overlay (never anything else: only our own file names)."""
    output.mkdir(parents=True, exist_ok=True)
    written = []
    for rel, text in sorted(files.items()):
        path = output / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    for stale in OWN_FILES - set(files):
        (output / stale).unlink(missing_ok=True)
    return written


OWN_FILES = frozenset(
    {
        "kustomization.yaml",
        "batchctl.yml",
        "rbac-scale.yaml",
        "batchctl.rules.yml",
        "prometheusrule.yaml",
        "servicemonitor.yaml",
        "dashboards/batchctl.json",
        "networkpolicy-prometheus.yaml",
        "rbac-claims.yaml",
        "admission-claims.yaml",
        "broker-secret.yaml",
    }
)
