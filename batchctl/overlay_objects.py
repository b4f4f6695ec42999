"""The Kubernetes objects `batchctl render k8s` writes into a site's overlay, as dicts (pure).

batchctl/overlay.py decides which of them a site gets and writes them as files; here
each is built from the site's config and options: the Role that scales the site's
Deployments, the ServiceMonitor, the NetworkPolicy's ingress (Prometheus' namespace,
the API server's addresses). Objects are those of the Kubernetes API (rbac/v1,
networking/v1) and of the prometheus-operator (monitoring.coreos.com/v1).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from batchctl.config import Config

Obj = dict[str, Any]

# The job the ServiceMonitor gives the autoscaler's port (the exporter's is the
# Service's name, batchctl): alerts.autoscaler_selector must select it.
AUTOSCALER_JOB = "batchctl-autoscaler"


class OverlayError(ValueError):
    """An option the overlay cannot be rendered with; the message says which and why."""


def scale_rbac(cfg: Config, namespace: str) -> list[Obj]:
    """The Role batchctl-scale (patch on the scale subresource of exactly the config's
    Deployments; with events, list and patch on pods) and its RoleBinding to the
    service account batchctl in `namespace`. [] when the config has no batch: a Role
    may not name nothing."""
    names = sorted({b.deployment for b in cfg.batches})
    if not names:
        return []
    rules: list[Obj] = [
        # The autoscaler writes replicas through the scale subresource only, of the
        # site's batch Deployments only; it never reads one (the exporter's watch
        # cache does), so there is no `get`.
        {
            "apiGroups": ["apps"],
            "resources": ["deployments/scale"],
            "verbs": ["patch"],
            "resourceNames": names,
        }
    ]
    if cfg.events.enabled:
        # The busy map (docs/operations.md, "Scaling in"): the batches' pods are listed to
        # match Celery's workers to them, and ranked with pod-deletion-cost before a
        # scale-down. Pod names are the ReplicaSet's: neither can be narrowed by name.
        rules.append({"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "patch"]})
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "batchctl-scale"},
        "rules": rules,
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "batchctl-scale"},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": "batchctl-scale",
        },
        "subjects": [{"kind": "ServiceAccount", "name": "batchctl", "namespace": namespace}],
    }
    return [role, binding]


def servicemonitor() -> Obj:
    """The ServiceMonitor of both metrics ports, the autoscaler's under AUTOSCALER_JOB."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {"name": "batchctl"},
        "spec": {
            "selector": {"matchLabels": {"app.kubernetes.io/name": "batchctl"}},
            "endpoints": [
                {"port": "metrics", "path": "/metrics", "interval": "30s", "scrapeTimeout": "10s"},
                {
                    "port": "autoscaler",
                    "path": "/metrics",
                    "interval": "30s",
                    "scrapeTimeout": "10s",
                    # A job of its own, so that CeleryExporterDown is about the exporter
                    # alone (alerts.autoscaler_selector: job="batchctl-autoscaler").
                    "relabelings": [
                        {"action": "replace", "targetLabel": "job", "replacement": AUTOSCALER_JOB}
                    ],
                },
            ],
        },
    }


def cidrs(given: tuple[str, ...]) -> list[str]:
    """--apiserver-cidr values as networks (a lone address: /32 or /128). Raises
    OverlayError."""
    out = []
    for cidr in given:
        try:
            out.append(str(ipaddress.ip_network(cidr, strict=False)))
        except ValueError:
            raise OverlayError(
                f"--apiserver-cidr {cidr}: not an address or network, e.g. 10.0.0.0/24"
            ) from None
    return out


def networkpolicy(namespace: str, apiserver: list[str]) -> Obj:
    """The NetworkPolicy's ingress, whole (a list is replaced, not merged): Prometheus'
    namespace on both metrics ports; the API server's addresses on the exporter's."""
    patch: Obj = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "batchctl"},
        "spec": {
            "ingress": [
                {
                    "from": [
                        {
                            "namespaceSelector": {
                                "matchLabels": {"kubernetes.io/metadata.name": namespace}
                            }
                        }
                    ],
                    "ports": [
                        {"port": "metrics", "protocol": "TCP"},
                        {"port": "autoscaler", "protocol": "TCP"},
                    ],
                }
            ]
        },
    }
    if apiserver:
        patch["spec"]["ingress"].append(
            {
                "from": [{"ipBlock": {"cidr": cidr}} for cidr in apiserver],
                "ports": [{"port": "metrics", "protocol": "TCP"}],
            }
        )
    return patch
