"""Which Deployments another controller scales: HPAs and KEDA ScaledObjects, listed.

The kubernetes backend asks before every tick's writes (autoscaler/othercontrollers.py
holds those batches). It lists the namespace's HorizontalPodAutoscalers (autoscaling/v2)
and KEDA ScaledObjects (keda.sh/v1alpha1; a 404 means KEDA's CRD is not installed: none)
and finds those whose scaleTargetRef is a Deployment. KEDA creates an HPA
`keda-hpa-<name>` for each ScaledObject: it is reported as the ScaledObject, which is
what a person must change. `owners` is pure; `ControllerFinder` does the two list calls.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

HPA_PATH = "/apis/autoscaling/v2/namespaces/{namespace}/horizontalpodautoscalers"
SCALED_OBJECTS_PATH = "/apis/keda.sh/v1alpha1/namespaces/{namespace}/scaledobjects"
_DEPLOYMENT_GROUPS = ("apps", "extensions")


def _targets_deployment(ref: Mapping[str, Any], default_kind: str | None) -> str | None:
    """The Deployment a scaleTargetRef names, or None (another kind, or no name)."""
    kind = ref.get("kind") or default_kind
    group = str(ref.get("apiVersion") or "apps/v1").split("/")[0]
    name = ref.get("name")
    if kind != "Deployment" or group not in _DEPLOYMENT_GROUPS or not isinstance(name, str):
        return None
    return name


def owners(
    hpas: Iterable[Mapping[str, Any]], scaled_objects: Iterable[Mapping[str, Any]]
) -> dict[str, list[str]]:
    """Deployment name -> the controllers that scale it ("HorizontalPodAutoscaler x",
    "ScaledObject y (KEDA)"), from the items of the two lists. An HPA that a listed
    ScaledObject owns is named by its ScaledObject."""
    out: dict[str, list[str]] = {}
    keda = set()
    for so in scaled_objects:
        meta, spec = so.get("metadata") or {}, so.get("spec") or {}
        # KEDA defaults the target to an apps/v1 Deployment.
        target = _targets_deployment(spec.get("scaleTargetRef") or {}, "Deployment")
        if target is not None:
            keda.add(meta.get("name"))
            out.setdefault(target, []).append(f"ScaledObject {meta.get('name')} (KEDA)")
    for hpa in hpas:
        meta, spec = hpa.get("metadata") or {}, hpa.get("spec") or {}
        target = _targets_deployment(spec.get("scaleTargetRef") or {}, None)
        if target is None:
            continue
        refs = meta.get("ownerReferences") or ()
        owned_by = {r.get("name") for r in refs if r.get("kind") == "ScaledObject"}
        if owned_by & keda:
            continue
        out.setdefault(target, []).append(f"HorizontalPodAutoscaler {meta.get('name')}")
    return {d: sorted(names) for d, names in out.items()}


class ControllerFinder:
    """Lists HPAs and ScaledObjects in one namespace with the client's own plumbing (no
    generated models: a ScaledObject has none, and an HPA's are strict about fields we
    do not read). Raises ApiException or urllib3's errors; a 404 on ScaledObjects means
    KEDA is not installed, not a failure."""

    def __init__(self, api_client: client.ApiClient, namespace: str, timeout: float) -> None:
        self.api_client = api_client
        self.namespace = namespace
        self.timeout = timeout

    def find(self) -> dict[str, list[str]]:
        hpas = self._items(HPA_PATH)
        try:
            scaled = self._items(SCALED_OBJECTS_PATH)
        except ApiException as e:
            if e.status != 404:
                raise
            scaled = []
        return owners(hpas, scaled)

    def _items(self, path: str) -> list[Mapping[str, Any]]:
        request = self.api_client.param_serialize(
            "GET",
            path,
            path_params={"namespace": self.namespace},
            header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"],
        )
        resp = self.api_client.call_api(*request, _request_timeout=self.timeout)
        try:
            body = resp.read()
            status = resp.status
        finally:
            resp.response.release_conn()
        if not 200 <= status <= 299:
            raise ApiException(status=status, reason=body.decode(errors="replace")[:200])
        items = json.loads(body).get("items") or []
        return [i for i in items if isinstance(i, dict)]
