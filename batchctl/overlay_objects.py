"""The Kubernetes objects `batchctl render k8s` writes into a site's overlay, as dicts (pure).

batchctl/overlay.py decides which of them a site gets and writes them as files; here
each is built from the site's config and options: the Role that scales the site's
Deployments, the ServiceMonitor, the NetworkPolicy's ingress (Prometheus' namespace,
the API server's addresses), and the patch that points both containers at the site's
own broker Secret. Objects are those of the Kubernetes API (apps/v1, rbac/v1,
networking/v1) and of the prometheus-operator (monitoring.coreos.com/v1).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from batchctl.access import role, service_account_binding
from batchctl.config import Config
from batchctl.config.load import ENV_BROKER_URL
from batchctl.config.written import ENV_SENTINEL_PASSWORD

Obj = dict[str, Any]

# The job the ServiceMonitor gives the autoscaler's port (the exporter's is the
# Service's name, batchctl): alerts.autoscaler_selector must select it.
AUTOSCALER_JOB = "batchctl-autoscaler"
# The Secret and key the base's containers read the broker URL from (k8s/base/
# deployment.yaml); a site with a Secret of its own gets a patch (broker_secret_patch).
BROKER_SECRET = "batchctl-broker"
BROKER_SECRET_KEY = "url"
# The base's Deployment and its containers that read the broker Secret.
DEPLOYMENT = "batchctl"
CONTAINERS = ("exporter", "autoscaler")
# A Secret's name is a DNS subdomain (RFC 1123): lowercase labels joined by dots, at
# most 253 characters; a key is letters, digits, '-', '_' and '.', at most 253 characters,
# and neither '.' nor starting with '..' (Kubernetes' IsConfigMapKey, which a
# secretKeyRef's key is checked with: the Deployment would not apply).
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\Z")
_SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]+\Z")


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
    return [role("batchctl-scale", rules), service_account_binding("batchctl-scale", namespace)]


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


def check_broker_secret(name: str, key: str) -> None:
    """--broker-secret NAME must be a Secret's name (a DNS subdomain) and
    --broker-secret-key KEY a Secret's key. Raises OverlayError."""
    if len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
        raise OverlayError(
            f"--broker-secret {name}: not a Secret name (a DNS subdomain: lowercase letters, "
            "digits, '-' and '.', starting and ending with a letter or digit, at most 253 "
            "characters), e.g. redis-credentials"
        )
    if len(key) > 253 or not _SECRET_KEY.match(key) or key == "." or key.startswith(".."):
        raise OverlayError(
            f"--broker-secret-key {key}: not a Secret key (letters, digits, '-', '_' and "
            "'.', at most 253 characters, neither '.' nor starting with '..'), e.g. url"
        )


def broker_secret_patch(name: str, key: str) -> Obj:
    """A strategic merge patch of the base's Deployment: in both containers, the env
    entries BATCHCTL_BROKER_URL (Secret `name`, key `key`) and BATCHCTL_SENTINEL_PASSWORD
    (Secret `name`, key sentinel_password, optional), merged by name over the base's,
    which read the Secret batchctl-broker. Raises OverlayError for a bad name or key."""
    check_broker_secret(name, key)

    def env() -> list[Obj]:  # a list of its own per container: YAML would alias a shared one
        return [
            {"name": ENV_BROKER_URL, "valueFrom": {"secretKeyRef": {"name": name, "key": key}}},
            {
                "name": ENV_SENTINEL_PASSWORD,
                "valueFrom": {
                    "secretKeyRef": {"name": name, "key": "sentinel_password", "optional": True}
                },
            },
        ]

    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": DEPLOYMENT},
        "spec": {
            "template": {"spec": {"containers": [{"name": c, "env": env()} for c in CONTAINERS]}}
        },
    }
