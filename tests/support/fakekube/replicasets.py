"""The fake API server's ReplicaSet controller: a Deployment's pods, created and removed as
its replicas change (with `FakeKube(pods=True)`).

Pods are shaped as the apiserver serves them (core/v1: labels from the template plus
`pod-template-hash`, an ownerReference to the ReplicaSet `<deployment>-<hash>`, the
template's spec, a phase and a Ready condition). A scale-down removes pods in the order
of kubernetes' `controller.ActivePodsWithRanks` (pkg/controller/controller_utils.go,
what the ReplicaSet controller sorts by before deleting):

1. unassigned before assigned (no `spec.nodeName`);
2. Pending, then Unknown, then Running;
3. not ready before ready;
4. lower `controller.kubernetes.io/pod-deletion-cost` first (an int32 annotation, 0 when
   absent; on by default since Kubernetes 1.22);
5. more pods of the ReplicaSet on the same node first (every pod here is on one node);
6. ready for less time first;
7. more container restarts first;
8. created more recently first.
"""

from __future__ import annotations

import copy
import secrets

from tests.support.fakekube.errors import invalid
from tests.support.fakekube.objects import new_object, now_rfc3339
from tests.support.fakekube.routes import JSON
from tests.support.fakekube.store import Store

# The ReplicaSet of every fake Deployment (set_status names it in its conditions too).
POD_TEMPLATE_HASH = "5d8f7c9b4"
DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"
NODE = "fake-node-1"
_SUFFIX = "bcdfghjklmnpqrstvwxz2456789"  # what the apiserver draws generateName suffixes from
_PHASES = {"Pending": 0, "Unknown": 1, "Running": 2}


def new_pod(dep: JSON, rv: int, *, ready: bool) -> JSON:
    """A pod of `dep`'s ReplicaSet, scheduled, Running (ready) or Pending (not yet)."""
    meta = dep["metadata"]
    template = dep["spec"]["template"]
    suffix = "".join(secrets.choice(_SUFFIX) for _ in range(5))
    rs = f"{meta['name']}-{POD_TEMPLATE_HASH}"
    pod = new_object("Pod", meta["namespace"], f"{rs}-{suffix}", rv)
    pod["metadata"]["labels"] = {
        **template["metadata"]["labels"],
        "pod-template-hash": POD_TEMPLATE_HASH,
    }
    pod["metadata"]["ownerReferences"] = [
        {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "name": rs,
            "uid": f"rs-{meta['uid']}",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    pod["spec"] = copy.deepcopy(template["spec"]) | {"nodeName": NODE}
    set_pod_ready(pod, ready)
    return pod


def set_pod_ready(pod: JSON, ready: bool) -> None:
    """The kubelet's status: Running and Ready, or Pending and not ready."""
    stamp = now_rfc3339()
    pod["status"] = {
        "phase": "Running" if ready else "Pending",
        "conditions": [
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": stamp},
            {"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": stamp},
        ],
        "containerStatuses": [
            {
                "name": c["name"],
                "ready": ready,
                "restartCount": 0,
                "image": c["image"],
                "imageID": "",
            }
            for c in pod["spec"]["containers"]
        ],
    }


def _ready(pod: JSON) -> bool:
    return any(
        c["type"] == "Ready" and c["status"] == "True"
        for c in pod.get("status", {}).get("conditions", ())
    )


def deletion_cost(pod: JSON) -> int:
    return int((pod["metadata"].get("annotations") or {}).get(DELETION_COST, "0"))


def removal_order(
    pods: list[JSON], created: dict[str, int], ready_at: dict[str, int]
) -> list[JSON]:
    """`pods` in the order a ReplicaSet removes them (the module docstring); `created` and
    `ready_at` give each pod's creation and readiness order (the timestamps' seconds
    tie too often in a test)."""

    def key(p: JSON) -> tuple[int, ...]:
        name = p["metadata"]["name"]
        restarts = sum(c.get("restartCount", 0) for c in p["status"].get("containerStatuses", ()))
        return (
            1 if p["spec"].get("nodeName") else 0,
            _PHASES.get(p["status"].get("phase", "Unknown"), 1),
            1 if _ready(p) else 0,
            deletion_cost(p),
            0,  # one node: every pod equally doubled up
            -ready_at.get(name, 0),
            -restarts,
            -created[name],
        )

    return sorted(pods, key=key)


def validate_pod(name: str, pod: JSON) -> None:
    """The apiserver's check of the deletion cost: an int32, written as a decimal."""
    value = (pod["metadata"].get("annotations") or {}).get(DELETION_COST)
    if value is None:
        return
    try:
        ok = str(int(value)) == value and -(2**31) <= int(value) < 2**31
    except ValueError:
        ok = False
    if not ok:
        raise invalid(
            "pods",
            name,
            f"metadata.annotations[{DELETION_COST}]",
            f'Invalid value: "{value}": must be a 32bit integer',
        )


class ReplicaSets(Store):
    """The controller's part of the fake (FakeKube sets `pods_enabled` and `auto_ready`):
    reconcile a Deployment's pods with its spec.replicas. Callers hold `_lock`."""

    pods_enabled: bool
    auto_ready: bool

    def _init_pods(self) -> None:
        self._created: dict[str, int] = {}  # pod -> creation order
        self._ready_at: dict[str, int] = {}  # pod -> order in which it became ready
        self._seq = 0
        self.deleted_pods: list[str] = []  # removed by a scale-down, in order

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _pods_of(self, ns: str, deployment: str) -> list[JSON]:
        rs = f"{deployment}-{POD_TEMPLATE_HASH}"
        return [
            p
            for (pns, _), p in self._objects["pods"].items()
            if pns == ns and any(o["name"] == rs for o in p["metadata"]["ownerReferences"])
        ]

    def _reconcile_pods(self, ns: str, deployment: str) -> None:
        if not self.pods_enabled:
            return
        dep = self._objects["deployments"][(ns, deployment)]
        pods = self._pods_of(ns, deployment)
        want = dep["spec"]["replicas"]
        for _ in range(want - len(pods)):
            pod = new_pod(dep, 0, ready=self.auto_ready)
            name = pod["metadata"]["name"]
            self._created[name] = self._next_seq()
            if self.auto_ready:
                self._ready_at[name] = self._next_seq()
            self._store("pods", pod, created=True)
        for pod in removal_order(pods, self._created, self._ready_at)[: max(0, len(pods) - want)]:
            name = pod["metadata"]["name"]
            self._delete("pods", ns, name)
            self.deleted_pods.append(name)

    def _pod_ready(self, ns: str, name: str, ready: bool) -> None:
        pod = copy.deepcopy(self._objects["pods"][(ns, name)])
        set_pod_ready(pod, ready)
        if ready:
            self._ready_at[name] = self._next_seq()
        self._store("pods", pod)
