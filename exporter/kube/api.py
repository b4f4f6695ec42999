"""The Deployments of one namespace as the cache reads them: the collection, the query
and the fields kept of each (name, replicas, ready replicas, the pod selector).

The requests themselves are plain `ApiClient.call_api` calls (batchctl/kuberest.py,
batchctl/kubewatch.py): the generated `AppsV1Api` and its pydantic models are never
imported, since they cost the exporter more memory than everything else it holds
(benchmarks/README.md).

One request covers all batches: field selectors cannot OR several names, so with more
than one Deployment the namespace is listed and watched and the names are filtered by
the cache. That needs `list` and `watch` on `deployments` in the namespace (with one
name, `resourceNames` could restrict it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from batchctl.kuberest import as_dict, name_of
from exporter.snapshot import Deployment

DEPLOYMENTS_PATH = "/apis/apps/v1/namespaces/{namespace}/deployments"


def deployments_path(namespace: str) -> str:
    return DEPLOYMENTS_PATH.format(namespace=namespace)


def deployments_query(names: frozenset[str]) -> list[tuple[str, Any]]:
    """A field selector when only one name is wanted; else the whole namespace."""
    if len(names) == 1:
        (name,) = names
        return [("fieldSelector", f"metadata.name={name}")]
    return []


def deployment_from(obj: Mapping[str, Any]) -> Deployment:
    """A Deployment from its JSON: spec.replicas (nil means 1, as the API defaults it),
    status.readyReplicas (omitted when 0) and spec.selector.matchLabels."""
    spec = as_dict(obj.get("spec"))
    replicas = spec.get("replicas")
    ready = as_dict(obj.get("status")).get("readyReplicas")
    labels = as_dict(as_dict(spec.get("selector")).get("matchLabels"))
    return Deployment(
        name=name_of(obj) or "",
        replicas=int(1 if replicas is None else replicas),
        ready_replicas=int(ready or 0),
        selector=tuple(sorted((str(k), str(v)) for k, v in labels.items())),
    )
