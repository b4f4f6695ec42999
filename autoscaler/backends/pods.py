"""A batch Deployment's pods: listed to match the busy map, annotated before a scale-down.

Two calls, the only ones on pods (the Role grants exactly `list` and `patch` on pods):

- `list` with the Deployment's own selector (spec.selector.matchLabels, from the
  exporter's Deployment cache), keeping the pods its ReplicaSets own (ownerReference
  `<deployment>-<pod-template-hash>`) that are not terminating. Each pod's worker is the
  live worker whose Celery node name's host part is the pod's name: Celery names a node
  `name@%h` and a container's host name is its pod's (docs/operations.md: a site that
  sets `-n` to anything else, or a pod `hostname`, loses the busy map and gets the old
  behaviour).
- `patch` (JSON merge patch) of `metadata.annotations` with
  `controller.kubernetes.io/pod-deletion-cost` before a scale-down, only on the pods
  whose cost changes, so that the ReplicaSet removes the idle pods first.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from celery.utils.nodenames import nodesplit
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from autoscaler.backends.ranking import ANNOTATION, Replica, deletion_cost
from batchctl.config import KubernetesConfig
from batchctl.kube import client_secrets, describe_error
from exporter.events.workload import WorkerLoad

MERGE_PATCH = "application/merge-patch+json"


class PodsError(Exception):
    """Pods could not be listed or annotated; the message says why, free of credentials."""


def pod_replicas(
    pods: Iterable[Mapping[str, Any]], deployment: str, workers: Sequence[WorkerLoad]
) -> list[Replica]:
    """The Deployment's pods (as the API lists them, JSON) as replicas with their load:
    owned by one of its ReplicaSets, not terminating, oldest first (pure)."""
    by_host = {nodesplit(w.hostname)[1]: w for w in workers}
    out = []
    for pod in sorted(pods, key=_created):
        meta = pod.get("metadata") or {}
        name = meta.get("name")
        if not isinstance(name, str) or meta.get("deletionTimestamp"):
            continue
        if not _owned_by(meta, deployment):
            continue
        w = by_host.get(name)
        ready = _ready(pod)
        out.append(Replica(name, ready, w.active if w else None, w.reserved if w else None))
    return out


def _created(pod: Mapping[str, Any]) -> str:
    return str((pod.get("metadata") or {}).get("creationTimestamp") or "")


def _owned_by(meta: Mapping[str, Any], deployment: str) -> bool:
    """Owned by a ReplicaSet of `deployment`: `<deployment>-<pod-template-hash>`."""
    labels = meta.get("labels") or {}
    rs = f"{deployment}-{labels.get('pod-template-hash', '')}"
    return any(
        o.get("kind") == "ReplicaSet" and o.get("name") == rs
        for o in meta.get("ownerReferences") or ()
    )


def _ready(pod: Mapping[str, Any]) -> bool:
    for c in (pod.get("status") or {}).get("conditions") or ():
        if c.get("type") == "Ready":
            return bool(c.get("status") == "True")
    return False


class PodClient:
    """List a Deployment's pods and set their pod-deletion-cost, in `cfg.namespace`."""

    def __init__(self, api_client: client.ApiClient, cfg: KubernetesConfig) -> None:
        self._api = client.CoreV1Api(api_client)
        self._cfg = cfg
        self._secrets = client_secrets(api_client)
        self._costs: dict[str, str | None] = {}  # pod -> its annotation at the last list

    def replicas(
        self, deployment: str, selector: Mapping[str, str], workers: Sequence[WorkerLoad]
    ) -> list[Replica]:
        """The Deployment's replicas with their load (see `pod_replicas`); PodsError."""
        labels = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
        try:
            raw = self._api.api_client.sanitize_for_serialization(
                self._api.list_namespaced_pod(
                    self._cfg.namespace,
                    label_selector=labels or None,
                    _request_timeout=self._cfg.request_timeout_seconds,
                )
            )
        except Exception as e:
            raise PodsError(self._why("list", e)) from e
        items = raw.get("items") or []
        for pod in items:
            meta = pod.get("metadata") or {}
            if isinstance(meta.get("name"), str):
                self._costs[meta["name"]] = (meta.get("annotations") or {}).get(ANNOTATION)
        return pod_replicas(items, deployment, workers)

    def rank(self, replicas: Sequence[Replica]) -> int:
        """Set each pod's pod-deletion-cost from its load where it differs; returns the
        pods patched. A pod that is gone meanwhile is skipped; other failures PodsError."""
        patched = 0
        for r in replicas:
            cost = str(deletion_cost(r))
            if self._costs.get(r.name) == cost:
                continue
            body = {"metadata": {"annotations": {ANNOTATION: cost}}}
            try:
                self._api.patch_namespaced_pod(
                    r.name,
                    self._cfg.namespace,
                    body,
                    _content_type=MERGE_PATCH,
                    _request_timeout=self._cfg.request_timeout_seconds,
                )
            except ApiException as e:
                if e.status == 404:
                    continue  # gone meanwhile: nothing left to rank
                raise PodsError(self._why("patch", e)) from e
            except Exception as e:
                raise PodsError(self._why("patch", e)) from e
            self._costs[r.name] = cost
            patched += 1
        return patched

    def _why(self, verb: str, e: BaseException) -> str:
        detail = describe_error(e, self._secrets)
        if isinstance(e, ApiException) and e.status == 403:
            return (
                f"not allowed to {verb} pods in namespace {self._cfg.namespace!r}: grant the "
                "service account `list` and `patch` on pods (k8s/base/rbac.yaml); without "
                f"them a scale-down stops whichever pods Kubernetes picks. Server said: {detail}"
            )
        return f"{verb} pods in namespace {self._cfg.namespace!r}: {detail}"
