"""What the fake API server serves: its routes, and the kind, group and apiVersion of each
resource (error texts and Scale need them)."""

from __future__ import annotations

import re
from typing import Any

JSON = dict[str, Any]

ROUTE = re.compile(
    r"^/(?:apis/(?P<group>apps|coordination\.k8s\.io|autoscaling|keda\.sh)"
    r"/(?P<version>v1|v2|v1alpha1)|api/v1)"
    r"(?:/namespaces/(?P<ns>[^/]+))?"
    r"/(?P<resource>deployments|leases|events|configmaps|pods"
    r"|horizontalpodautoscalers|scaledobjects)"
    r"(?:/(?P<name>[^/]+))?(?:/(?P<sub>scale|status))?/?$"
)
# Resource, kind, group and apiVersion per collection: error texts and Scale need them.
# Events are the core group's (""), served under /api/v1 like the real ones.
KINDS = {
    "deployments": ("Deployment", "apps", "apps/v1"),
    "leases": ("Lease", "coordination.k8s.io", "coordination.k8s.io/v1"),
    "events": ("Event", "", "v1"),
    # The claim history's ring of ConfigMaps (issue 21): data, no spec.
    "configmaps": ("ConfigMap", "", "v1"),
    # Pods (with FakeKube(pods=True): replicasets.py plays the ReplicaSet controller).
    "pods": ("Pod", "", "v1"),
    "horizontalpodautoscalers": ("HorizontalPodAutoscaler", "autoscaling", "autoscaling/v2"),
    # KEDA's custom resource: served only while its CRD is "installed" (keda_installed).
    "scaledobjects": ("ScaledObject", "keda.sh", "keda.sh/v1alpha1"),
}
VERBS = {"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
# Kinds whose content sits at the top level beside metadata, not under `spec`.
TOP_LEVEL = {"events": None, "configmaps": ("data", "binaryData", "immutable")}
# The two self reviews: cluster-scoped, create only (tests/support/fakekube/auth.py).
REVIEWS = {
    "/apis/authentication.k8s.io/v1/selfsubjectreviews": (
        "authentication.k8s.io",
        "selfsubjectreviews",
    ),
    "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews": (
        "authorization.k8s.io",
        "selfsubjectaccessreviews",
    ),
}
