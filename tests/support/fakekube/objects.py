"""The objects the fake API server serves, shaped as kube-apiserver writes them:
Deployments with the controller's status, their autoscaling/v1 Scale, Leases, Events."""

from __future__ import annotations

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


def validate(resource: str, name: str, obj: JSON) -> None:
    spec = obj.get("spec") or {}
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
