"""Who may do what with the claims in Kubernetes (claims.store: kubernetes), as manifests.

`batchctl render k8s` writes these into a site's overlay (rbac-claims.yaml,
admission-claims.yaml) from its config: the claim Leases' and the history ring's names
and the exporter's Service are known there, so every rule that can name its objects
does (RBAC cannot restrict list, watch or create by name).

Roles for people (bind one per team: docs/deploy.md, "Who may claim"):

- `batchctl-viewer`: status and history. get/list/watch the Leases; get the history
  ring's ConfigMaps; get services/proxy on the exporter's Service (its snapshot and
  site config, read-only).
- `batchctl-claimer`: the viewer's, and claim, renew, release their own claims, drain
  them and scale them: create Leases (a batch's first claim makes its Lease) and
  update the batches' claim Leases.
- `batchctl-admin`: the claimer's, and the custom verb `force` on the claim Leases:
  releasing, draining or scaling someone else's live claim (`--force --reason`).

Every authenticated user may already ask who they are and what they may do
(SelfSubjectReview, SelfSubjectAccessReview: the bootstrap ClusterRole system:basic-user).

What RBAC cannot say about a Lease's fields: `update` on a claim Lease lets a claimer
write any of it with kubectl, someone else's holder included, and RBAC does not know
what `force` means. The CLI checks both (the name the cluster knows; `force` through a
SelfSubjectAccessReview), and the ValidatingAdmissionPolicy `admission_policy` makes the
API server check them for every writer but batchctl's own service account: the writer
names themselves (changed-by), claims only in their own name, and touches someone
else's claim only with `force`, or by taking it over (CEL has no clock: that an expired
claim is the only kind taken over is batchctl's check, not the API server's).
"""

from __future__ import annotations

from typing import Any

from batchctl.claims.lease_record import CHANGED_BY, FIELD_PREFIX, lease_name
from batchctl.claims.ring import segment_names
from batchctl.config import Config

Doc = dict[str, Any]
LEASES = "coordination.k8s.io"
SERVICE_ACCOUNT = "batchctl"


RBAC_NOTE = (
    "# Who may claim (docs/deploy.md): bind batchctl-viewer, batchctl-claimer or\n"
    "# batchctl-admin to a team in this namespace, e.g.\n"
    "#   kubectl -n NAMESPACE create rolebinding batch-team --role=batchctl-claimer "
    "--group=TEAM\n"
)
ADMISSION_NOTE = (
    "# Defense in depth (Kubernetes 1.30+): the API server itself refuses a claim Lease\n"
    "# written in someone else's name, or someone else's claim changed without the verb\n"
    "# force (batchctl-admin). Cluster-scoped, so not in kustomization.yaml: a cluster\n"
    "# admin applies it apart: kubectl apply -f admission-claims.yaml\n"
)


def claims_in_cluster(cfg: Config) -> bool:
    """Whether the site's pods keep the claims in Leases: the config's claims.store, else
    the base's default in the pod (BATCHCTL_CLAIMS_STORE=kubernetes)."""
    return "store" not in cfg.claims.model_fields_set or cfg.claims.store == "kubernetes"


def _rule(
    group: str, resources: list[str], verbs: list[str], names: list[str] | None = None
) -> Doc:
    rule: Doc = {"apiGroups": [group], "resources": resources, "verbs": verbs}
    if names:
        rule["resourceNames"] = names
    return rule


def people_roles(cfg: Config) -> list[Doc]:
    """The Roles batchctl-viewer, batchctl-claimer and batchctl-admin."""
    leases = sorted({lease_name(b.queue) for b in cfg.batches})
    viewer = [
        # status and history: the claims, as a list or one by one, and watched.
        _rule(LEASES, ["leases"], ["get", "list", "watch"]),
        # history: the ring the sidecar keeps.
        _rule("", ["configmaps"], ["get"], segment_names()),
        # status, claim's and release's work check, the site's config: the exporter's
        # /api/v1/snapshot and /api/v1/config through the API server, read-only.
        _rule("", ["services/proxy"], ["get"], [cfg.kubernetes.exporter_service]),
    ]
    claimer = [
        *viewer,
        # A batch's first claim creates its Lease (create cannot be narrowed by name).
        _rule(LEASES, ["leases"], ["create"]),
        # claim, renew, release, drain, scale: the batches' claim Leases only.
        _rule(LEASES, ["leases"], ["update"], leases),
    ]
    admin = [
        *claimer,
        # --force on someone else's live claim: a custom verb, asked by the CLI
        # (SelfSubjectAccessReview) and by the admission policy.
        _rule(LEASES, ["leases"], ["force"], leases),
    ]
    return [
        role("batchctl-viewer", viewer),
        role("batchctl-claimer", claimer),
        role("batchctl-admin", admin),
    ]


def service_account_role(cfg: Config, namespace: str) -> list[Doc]:
    """The Role batchctl-claims and its binding to batchctl's service account: the
    exporter's and the sidecar's watch of the Leases, the claims the sidecar ends or
    marks expired, the history ring it writes, and the CLI run inside the pod."""
    leases = sorted({lease_name(b.queue) for b in cfg.batches})
    rules = [
        # The watch caches (exporter: the claims of every collection; sidecar: the
        # history mirror). A list or watch cannot be narrowed by name.
        _rule(LEASES, ["leases"], ["list", "watch"]),
        # The sidecar ends drained claims, records expiries and adds the replica-seconds
        # a claim uses (read, then update with the resourceVersion read); `kubectl
        # exec ... batchctl claim` acts as the pod.
        _rule(LEASES, ["leases"], ["get", "update"], leases),
        # The history ring: read it, append to it, replace its oldest segment...
        _rule("", ["configmaps"], ["get", "update"], segment_names()),
        # ...and create a segment the first time (create cannot be narrowed by name).
        _rule("", ["configmaps"], ["create"]),
        # The CLI inside the pod reads the snapshot through the API server as anyone.
        _rule("", ["services/proxy"], ["get"], [cfg.kubernetes.exporter_service]),
    ]
    return [role("batchctl-claims", rules), service_account_binding("batchctl-claims", namespace)]


def role(name: str, rules: list[Doc]) -> Doc:
    """A Role (rbac.authorization.k8s.io/v1) named `name` granting `rules`."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": name},
        "rules": rules,
    }


def service_account_binding(name: str, namespace: str) -> Doc:
    """The RoleBinding `name` of the Role `name` to batchctl's service account in
    `namespace`."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": namespace}],
    }


def admission_policy(namespace: str) -> list[Doc]:
    """A ValidatingAdmissionPolicy (admissionregistration.k8s.io/v1, GA in 1.30) on the
    claim Leases of `namespace`, and its binding (both cluster-scoped: named after the
    namespace)."""
    me = f"system:serviceaccount:{namespace}:{SERVICE_ACCOUNT}"
    holder = FIELD_PREFIX + "holder"
    name = f"batchctl-claims-{namespace}"
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": [LEASES],
                        "apiVersions": ["v1"],
                        "operations": ["CREATE", "UPDATE"],
                        "resources": ["leases"],
                    }
                ],
                "objectSelector": {"matchLabels": {"batchctl.io/claim": "true"}},
            },
            # batchctl's own service account ends drains, records expiries and counts
            # usage as "autoscaler"; everyone else is checked.
            "matchConditions": [
                {
                    "name": "not-batchctl-itself",
                    "expression": f"request.userInfo.username != '{me}'",
                }
            ],
            "variables": [
                {"name": "user", "expression": "request.userInfo.username"},
                {
                    "name": "notes",
                    "expression": "has(object.metadata.annotations) ? "
                    "object.metadata.annotations : {}",
                },
                {
                    "name": "holder",
                    "expression": "has(object.spec.holderIdentity) ? "
                    "object.spec.holderIdentity : ''",
                },
                {
                    "name": "previous",
                    "expression": "oldObject != null && has(oldObject.spec.holderIdentity) ? "
                    "oldObject.spec.holderIdentity : ''",
                },
                {
                    "name": "mayForce",
                    "expression": "authorizer.group('coordination.k8s.io').resource('leases')"
                    ".namespace(object.metadata.namespace).name(object.metadata.name)"
                    ".check('force').allowed()",
                },
            ],
            "validations": [
                {
                    "expression": f"'{CHANGED_BY}' in variables.notes && "
                    f"variables.notes['{CHANGED_BY}'] == variables.user",
                    "message": f"a claim Lease names who changed it ({CHANGED_BY}): only yourself",
                    "reason": "Forbidden",
                },
                {
                    "expression": "variables.holder == '' || variables.holder == variables.user"
                    " || variables.holder == variables.previous",
                    "message": "you may claim only in your own name (spec.holderIdentity)",
                    "reason": "Forbidden",
                },
                {
                    "expression": f"('{holder}' in variables.notes ? variables.notes['{holder}']"
                    " : '') == variables.holder",
                    "message": f"spec.holderIdentity and the annotation {holder} must agree",
                    "reason": "Invalid",
                },
                {
                    "expression": "variables.previous == '' || variables.previous == "
                    "variables.user || variables.holder == variables.user || "
                    "variables.mayForce",
                    "message": "someone else's claim: releasing, draining or scaling it takes "
                    "the Role batchctl-admin (the verb force on this Lease)",
                    "reason": "Forbidden",
                },
            ],
        },
    }
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": {
            "policyName": name,
            "validationActions": ["Deny"],
            "matchResources": {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
            },
        },
    }
    return [policy, binding]


__all__ = [
    "ADMISSION_NOTE",
    "RBAC_NOTE",
    "admission_policy",
    "claims_in_cluster",
    "people_roles",
    "role",
    "service_account_binding",
    "service_account_role",
]
