"""The objects the fake API server serves, shaped as kube-apiserver writes them:
Deployments with the controller's status, their autoscaling/v1 Scale, Leases, Events."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

from tests.support.fakekube.errors import invalid
from tests.support.fakekube.routes import JSON, KINDS


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_micro() -> str:
    """A MicroTime, the format of Lease acquireTime/renewTime."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


VERSION = {
    "major": "1",
    "minor": "34",
    "gitVersion": "v1.34.0-fake",
    "gitCommit": "0" * 40,
    "gitTreeState": "clean",
    "buildDate": "2025-01-01T00:00:00Z",
    "goVersion": "go1.24",
    "compiler": "gc",
    "platform": "linux/amd64",
}


def object_key(obj: JSON) -> tuple[str, str]:
    return obj["metadata"]["namespace"], obj["metadata"]["name"]


# Top-level fields the server owns on create.
MANAGED = ("apiVersion", "kind", "metadata")


def new_object(kind: str, ns: str, name: str, rv: int) -> JSON:
    api_version = next(v for k, _, v in KINDS.values() if k == kind)
    return {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {
            "name": name,
            "namespace": ns,
            "uid": str(uuid.uuid4()),
            "resourceVersion": str(rv),
            "creationTimestamp": now_rfc3339(),
        },
        "spec": {},
    }


def new_deployment(ns: str, name: str, replicas: int, labels: dict[str, str], rv: int) -> JSON:
    obj = new_object("Deployment", ns, name, rv)
    obj["metadata"].update(
        {
            "generation": 1,
            "labels": dict(labels),
            "annotations": {"deployment.kubernetes.io/revision": "1"},
        }
    )
    obj["spec"] = {
        "replicas": replicas,
        "selector": {"matchLabels": dict(labels)},
        "template": {
            "metadata": {"labels": dict(labels)},
            "spec": {
                "containers": [
                    {
                        "name": "worker",
                        "image": "ghcr.io/example/celery-worker:1.0",
                        "args": ["celery", "worker", "--queues", name],
                        "resources": {},
                        "terminationMessagePath": "/dev/termination-log",
                        "terminationMessagePolicy": "File",
                        "imagePullPolicy": "IfNotPresent",
                    }
                ],
                "restartPolicy": "Always",
                "terminationGracePeriodSeconds": 300,
                "dnsPolicy": "ClusterFirst",
                "securityContext": {},
                "schedulerName": "default-scheduler",
            },
        },
        "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
        },
        "revisionHistoryLimit": 10,
        "progressDeadlineSeconds": 600,
    }
    obj["status"] = {}
    return obj


def set_status(obj: JSON, *, pods: int, ready: int) -> None:
    """DeploymentStatus as the controller writes it: zero counts are omitted (omitempty)."""
    status: JSON = {"observedGeneration": obj["metadata"]["generation"]}
    counts = {
        "replicas": pods,
        "updatedReplicas": pods,
        "readyReplicas": ready,
        "availableReplicas": ready,
        "unavailableReplicas": max(pods - ready, 0),
    }
    status.update({k: v for k, v in counts.items() if v})
    stamp = now_rfc3339()
    available = ready >= obj["spec"]["replicas"]
    rs_name = f"{obj['metadata']['name']}-5d8f7c9b4"
    status["conditions"] = [
        {
            "type": "Available",
            "status": "True" if available else "False",
            "lastUpdateTime": stamp,
            "lastTransitionTime": stamp,
            "reason": "MinimumReplicasAvailable" if available else "MinimumReplicasUnavailable",
            "message": "Deployment has minimum availability."
            if available
            else "Deployment does not have minimum availability.",
        },
        {
            "type": "Progressing",
            "status": "True",
            "lastUpdateTime": stamp,
            "lastTransitionTime": stamp,
            "reason": "NewReplicaSetAvailable",
            "message": f'ReplicaSet "{rs_name}" has successfully progressed.',
        },
    ]
    obj["status"] = status


def scale_of(dep: JSON) -> JSON:
    meta = dep["metadata"]
    selector = ",".join(
        f"{k}={v}" for k, v in sorted(dep["spec"]["selector"]["matchLabels"].items())
    )
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta["uid"],
            "resourceVersion": meta["resourceVersion"],
            "creationTimestamp": meta["creationTimestamp"],
        },
        "spec": {"replicas": dep["spec"]["replicas"]},
        "status": {"replicas": dep["status"].get("replicas", 0), "selector": selector},
    }


# ObjectMeta's limits (k8s.io/apimachinery validation): every annotation together at most
# 256 KiB; keys `[prefix/]name`, the name 1-63 characters; a label value at most 63.
ANNOTATIONS_MAX_BYTES = 256 * 1024
CONFIGMAP_MAX_BYTES = 1024 * 1024
_NAME_PART = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_PREFIX = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def _key_problem(key: str) -> str | None:
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not _PREFIX.match(prefix)):
        return "prefix part must be a lowercase RFC 1123 subdomain"
    if not 0 < len(name) <= 63 or not _NAME_PART.match(name):
        return (
            "name part must consist of alphanumeric characters, '-', '_' or '.', and must "
            "start and end with an alphanumeric character (at most 63 characters)"
        )
    return None


def validate_meta(resource: str, name: str, meta: JSON) -> None:
    annotations = meta.get("annotations") or {}
    for key, value in annotations.items():
        if (problem := _key_problem(key)) is not None:
            raise invalid(
                resource, name, "metadata.annotations", f'Invalid value: "{key}": {problem}'
            )
        if not isinstance(value, str):
            raise invalid(resource, name, f"metadata.annotations[{key}]", "must be a string")
    size = sum(len(k) + len(v.encode()) for k, v in annotations.items())
    if size > ANNOTATIONS_MAX_BYTES:
        raise invalid(
            resource,
            name,
            "metadata.annotations",
            f"Too long: must have at most {ANNOTATIONS_MAX_BYTES} bytes",
        )
    for key, value in (meta.get("labels") or {}).items():
        if (problem := _key_problem(key)) is not None:
            raise invalid(resource, name, "metadata.labels", f'Invalid value: "{key}": {problem}')
        if not isinstance(value, str) or len(value) > 63 or not _LABEL_VALUE.match(value):
            raise invalid(
                resource,
                name,
                "metadata.labels",
                f'Invalid value: "{value}": a valid label must be an empty string or consist '
                "of alphanumeric characters, '-', '_' or '.', and must start and end with an "
                "alphanumeric character (at most 63 characters)",
            )


def validate(resource: str, name: str, obj: JSON) -> None:
    validate_meta(resource, name, obj.get("metadata") or {})
    spec = obj.get("spec") or {}
    if resource == "configmaps":
        data = obj.get("data") or {}
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
            raise invalid(resource, name, "data", "must be a map of strings")
        if sum(len(k) + len(v.encode()) for k, v in data.items()) > CONFIGMAP_MAX_BYTES:
            raise invalid(
                resource, name, "[]", f"Too long: must have at most {CONFIGMAP_MAX_BYTES} bytes"
            )
    if resource == "leases":
        d = spec.get("leaseDurationSeconds")
        if d is not None and (not isinstance(d, int) or d <= 0):
            raise invalid(resource, name, "spec.leaseDurationSeconds", "must be greater than 0")
        holder = spec.get("holderIdentity")
        if holder is not None and not isinstance(holder, str):
            raise invalid(resource, name, "spec.holderIdentity", "must be a string")
    elif resource == "events":
        involved = obj.get("involvedObject") or {}
        if not involved.get("name") or not involved.get("kind"):
            raise invalid(resource, name, "involvedObject", "Required value: kind and name")
        if obj.get("type") not in ("Normal", "Warning"):
            raise invalid(resource, name, "type", "must be Normal or Warning")
        if not obj.get("reason"):
            raise invalid(resource, name, "reason", "Required value")
    elif resource == "deployments":
        r = spec.get("replicas")
        if not isinstance(r, int) or isinstance(r, bool) or r < 0:
            raise invalid(resource, name, "spec.replicas", "must be greater than or equal to 0")
