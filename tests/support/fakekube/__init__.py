"""A fake Kubernetes API server that the official `kubernetes` client talks to unchanged.

Tests cannot reach a real cluster, but the client speaks plain HTTP/JSON, so this
server stands in for kube-apiserver on 127.0.0.1: the code under test loads a
generated kubeconfig (`FakeKube.write_kubeconfig`) exactly as it would in production.

What it serves, shaped like the real API (kinds, apiVersions, Status errors):
- apps/v1 Deployments: list (DeploymentList with metadata.resourceVersion), get, patch,
  and watch (`?watch=true`, chunked newline-delimited JSON events, replay from
  `resourceVersion`, `timeoutSeconds`, bookmarks, 410 "Expired" once compacted);
- the `scale` subresource (autoscaling/v1 Scale): get, put, and patch as merge,
  strategic merge or JSON patch, with resourceVersion preconditions -> 409;
- coordination.k8s.io/v1 Leases: list/watch, get, create, replace, patch, delete, with
  the real optimistic-concurrency rules (409 on a stale resourceVersion);
- autoscaling/v2 HorizontalPodAutoscalers and keda.sh/v1alpha1 ScaledObjects: list,
  watch and get (`add_hpa`, `add_scaled_object`); the keda.sh group answers 404, as
  the apiserver does for a CRD that is not installed, until a ScaledObject is added.

- admissionregistration.k8s.io/v1 ValidatingAdmissionPolicies and their bindings, once
  loaded (`apply_admission`): their CEL (cel-python) judges each Lease, ConfigMap or
  Event write they match, with the apiserver's 403/422 denial (admission.py lists the
  subset implemented; anything else in a policy is refused at load).

Test-side controls: `set_replicas` plays the Deployment controller; `fail`/`delay` inject
faults per method and path; `down`/`up` stop and restart the listener on the same port
(open connections, watches included, are cut); `expire_watches` sends 410 to watchers;
`requests` records what the client sent (method, path, query, headers, content type, body).

Strategic merge patch is applied as a JSON merge patch: right for every field here,
since Scale and Lease hold no lists that merge by key.

Modules: `server` (FakeKube: lifecycle and the test-side controls), `serving` (how each
request is answered), `store` (objects, resourceVersions, history, watchers), `wire`
(HTTP: requests, faults, the handler), `objects` (Deployments, Scale, validation),
`errors` (Status bodies), `admission` (ValidatingAdmissionPolicy), `patches`,
`selectors`, `routes`, `kubeconfig`.
"""

from __future__ import annotations

from tests.support.fakekube.errors import ApiError, status_body
from tests.support.fakekube.kubeconfig import kubeconfig_dict
from tests.support.fakekube.objects import now_micro, now_rfc3339
from tests.support.fakekube.patches import apply_patch, json_patch, merge_patch
from tests.support.fakekube.routes import JSON
from tests.support.fakekube.selectors import parse_field_selector, parse_label_selector
from tests.support.fakekube.server import FakeKube
from tests.support.fakekube.wire import Fault, Request

__all__ = [
    "JSON",
    "ApiError",
    "FakeKube",
    "Fault",
    "Request",
    "apply_patch",
    "json_patch",
    "kubeconfig_dict",
    "merge_patch",
    "now_micro",
    "now_rfc3339",
    "parse_field_selector",
    "parse_label_selector",
    "status_body",
]
