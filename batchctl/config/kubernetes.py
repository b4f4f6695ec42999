"""The `kubernetes:` section: where batchctl runs in the cluster and how it reaches the
API server (the exporter's Deployment cache, the autoscaler's scale writes, the claims
kept in Leases and the CLI's reads through the service proxy)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator

from batchctl.config.base import _DNS_LABEL, _Strict
from batchctl.units import shown

# Where Kubernetes mounts the pod's service account (its namespace, token and CA).
SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


def pod_namespace(sa_dir: Path = SERVICE_ACCOUNT_DIR) -> str:
    """The pod's own namespace in-cluster (the service account's `namespace` file),
    else `default`, as kubectl and client-go default it."""
    try:
        text = (sa_dir / "namespace").read_text().strip()
    except OSError:
        return "default"
    return text or "default"


class KubernetesConfig(_Strict):
    enabled: bool = True
    namespace: str = Field(default_factory=pod_namespace)
    kubeconfig: str | None = None
    context: str | None = None
    # Watches are restarted at least this often; the server may end them sooner.
    watch_timeout_seconds: int = Field(300, ge=1)
    request_timeout_seconds: float = Field(5.0, gt=0)
    # The exporter's Service as the API server's service proxy names it,
    # [SCHEME:]NAME[:PORT]: `batchctl status`, claim and release read the exporter's
    # snapshot through /api/v1/namespaces/NS/services/<this>/proxy/api/v1/snapshot when
    # the claims are kept in Kubernetes (RBAC: get services/proxy with this name).
    exporter_service: str = "batchctl:9808"

    @field_validator("namespace")
    @classmethod
    def _ns(cls, v: str) -> str:
        if not _DNS_LABEL.match(v):
            raise ValueError("must be a Kubernetes namespace name (lower case, digits, '-')")
        return v

    @field_validator("exporter_service")
    @classmethod
    def _service(cls, v: str) -> str:
        parts = v.split(":")
        name = parts[1] if len(parts) == 3 else parts[0]
        scheme_ok = len(parts) < 3 or parts[0] in ("http", "https")
        if len(parts) > 3 or not scheme_ok or not _DNS_LABEL.match(name) or not all(parts):
            raise ValueError(
                "expected [SCHEME:]NAME[:PORT] of the exporter's Service, e.g. batchctl:9808 "
                f"or https:batchctl:9808, got {shown(v)}"
            )
        return v


__all__ = ["SERVICE_ACCOUNT_DIR", "KubernetesConfig", "pod_namespace"]
