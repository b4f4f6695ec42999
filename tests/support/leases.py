"""Claims in Leases for the tests: the kubernetes claim store on the fake API server, and
the roles a site binds people to.

`kube_config` is the `kubernetes:` section a process of ours would load (a generated
kubeconfig with the caller's token); `lease_store` a LeaseClaimStore through it, as
the CLI opens one; `unreachable_store` one whose API server refuses connections.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from batchctl.claims.lease_store import LeaseClaimStore
from batchctl.config import KubernetesConfig
from batchctl.identity import Identity
from tests.support.fakekube import FakeKube, kubeconfig_dict
from tests.support.servers.network import closed_port


def kube_config(
    kube: FakeKube,
    directory: Path,
    *,
    token: str | None = None,
    filename: str = "kubeconfig",
    timeout: float = 2.0,
) -> KubernetesConfig:
    """The `kubernetes:` section for a caller with `token` (default: the fake's service
    account), through a kubeconfig written in `directory`."""
    path = kube.write_kubeconfig(directory, token=token, filename=filename)
    return KubernetesConfig(
        namespace=kube.namespace, kubeconfig=str(path), request_timeout_seconds=timeout
    )


def lease_store(
    kube: FakeKube,
    directory: Path,
    *,
    token: str | None = None,
    identity: Identity | None = None,
    check_force: bool = False,
    filename: str = "kubeconfig",
) -> LeaseClaimStore:
    return LeaseClaimStore(
        kube_config(kube, directory, token=token, filename=filename),
        identity=identity,
        check_force=check_force,
    )


def unreachable_store(directory: Path) -> LeaseClaimStore:
    """A store whose API server refuses connections (a closed loopback port)."""
    path = directory / "unreachable-kubeconfig"
    server = f"http://127.0.0.1:{closed_port()}"
    path.write_text(yaml.safe_dump(kubeconfig_dict(server, "token", namespace="court-listener")))
    cfg = KubernetesConfig(
        namespace="court-listener", kubeconfig=str(path), request_timeout_seconds=0.5
    )
    return LeaseClaimStore(cfg)
