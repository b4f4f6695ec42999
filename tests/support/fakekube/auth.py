"""Who is calling and what they may do, as kube-apiserver decides it: bearer tokens mapped
to users (authentication), RBAC over Roles, ClusterRoles and their bindings
(authorization), and the two review APIs a client asks about itself:

- `SelfSubjectReview` (authentication.k8s.io/v1, what `kubectl auth whoami` posts):
  the caller's `status.userInfo` (username, uid, groups);
- `SelfSubjectAccessReview` (authorization.k8s.io/v1, `kubectl auth can-i`): whether
  the caller may do `spec.resourceAttributes` (verb, group, resource, subresource,
  namespace, name), decided by the same RBAC rules as a real request.

RBAC as the apiserver applies it (rbac.authorization.k8s.io/v1): a rule allows a request
when its apiGroups, resources (`resource/subresource` for a subresource) and verbs
contain the request's, or "*", and, when it lists resourceNames, the request's name is
one of them (a list, watch or create has no name and never matches such a rule). A
Role's rules hold in its namespace; a ClusterRole's in the namespace of the RoleBinding
that binds it, or everywhere through a ClusterRoleBinding. Verbs are plain strings: a
custom verb (`force`) is allowed exactly where a rule names it. Every authenticated
user may create the two self reviews (the bootstrap ClusterRole system:basic-user),
and the group system:masters may do anything. Until a test loads RBAC (`Rbac.load`,
FakeKube.apply_rbac) every request of an authenticated user is allowed, as the fake
always did.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from tests.support.fakekube.routes import JSON

AUTHENTICATED = "system:authenticated"
MASTERS = "system:masters"


@dataclass(frozen=True)
class UserInfo:
    """A user as the authenticator hands it to the rest of the apiserver."""

    username: str
    groups: tuple[str, ...] = ()
    uid: str = field(default_factory=lambda: secrets.token_hex(8))

    def to_json(self) -> JSON:
        return {
            "username": self.username,
            "uid": self.uid,
            "groups": [*self.groups, AUTHENTICATED],
        }

    def subjects(self) -> list[tuple[str, str, str | None]]:
        """(kind, name, namespace) of every RBAC subject this user is: the User (or the
        ServiceAccount its name says) and each Group."""
        out: list[tuple[str, str, str | None]] = [("User", self.username, None)]
        m = re.match(r"^system:serviceaccount:([^:]+):([^:]+)$", self.username)
        if m:
            out.append(("ServiceAccount", m[2], m[1]))
        out += [("Group", g, None) for g in (*self.groups, AUTHENTICATED)]
        return out


@dataclass(frozen=True)
class Attributes:
    """A request as the authorizer sees it."""

    verb: str
    group: str
    resource: str  # with its subresource: deployments/scale, services/proxy
    name: str | None
    namespace: str | None


def _contains(values: Any, wanted: str) -> bool:
    return isinstance(values, list) and ("*" in values or wanted in values)


def rule_allows(rule: JSON, a: Attributes) -> bool:
    """Whether one PolicyRule allows `a` (resource requests only)."""
    if not _contains(rule.get("verbs"), a.verb):
        return False
    if not _contains(rule.get("apiGroups"), a.group):
        return False
    if not _contains(rule.get("resources"), a.resource):
        return False
    names = rule.get("resourceNames")
    return not names or (a.name is not None and a.name in names)


class Rbac:
    """Roles, ClusterRoles and their bindings, as loaded; decides each request."""

    def __init__(self) -> None:
        self.roles: dict[tuple[str, str], list[JSON]] = {}  # (namespace, name) -> rules
        self.cluster_roles: dict[str, list[JSON]] = {}
        # (namespace or None for a ClusterRoleBinding, roleRef kind, roleRef name, subjects)
        self.bindings: list[tuple[str | None, str, str, list[JSON]]] = []

    def load(self, docs: list[JSON], namespace: str) -> None:
        """Add the RBAC objects of `docs` (other kinds are skipped); a namespaced object
        without a namespace lands in `namespace`, as kubectl apply -n puts it."""
        for d in docs:
            kind, meta = d.get("kind"), d.get("metadata") or {}
            ns = meta.get("namespace") or namespace
            if kind == "Role":
                self.roles[(ns, meta["name"])] = list(d.get("rules") or [])
            elif kind == "ClusterRole":
                self.cluster_roles[meta["name"]] = list(d.get("rules") or [])
            elif kind == "RoleBinding":
                ref = d["roleRef"]
                self.bindings.append((ns, ref["kind"], ref["name"], list(d.get("subjects") or [])))
            elif kind == "ClusterRoleBinding":
                ref = d["roleRef"]
                self.bindings.append(
                    (None, ref["kind"], ref["name"], list(d.get("subjects") or []))
                )

    def bind(self, subject: JSON, role: str, namespace: str, *, cluster_role: bool = False) -> None:
        """A RoleBinding in `namespace` of `role` (a Role, or a ClusterRole) to `subject`,
        e.g. {"kind": "User", "name": "alice"}; as `kubectl create rolebinding` makes."""
        self.bindings.append(
            (namespace, "ClusterRole" if cluster_role else "Role", role, [subject])
        )

    def _rules_for(self, user: UserInfo, namespace: str | None) -> list[JSON]:
        mine = user.subjects()
        out: list[JSON] = []
        for ns, kind, name, subjects in self.bindings:
            if ns is not None and ns != namespace:
                continue
            if not any(_subject_matches(s, mine, ns) for s in subjects):
                continue
            if kind == "Role":
                out += self.roles.get((ns or "", name), [])
            else:
                out += self.cluster_roles.get(name, [])
        return out

    def allows(self, user: UserInfo, a: Attributes) -> bool:
        if MASTERS in user.groups:
            return True
        if (
            a.verb == "create"
            and a.namespace is None
            and (a.group, a.resource)
            in (
                ("authentication.k8s.io", "selfsubjectreviews"),
                ("authorization.k8s.io", "selfsubjectaccessreviews"),
            )
        ):
            return True  # system:basic-user, bound to every authenticated user
        return any(rule_allows(r, a) for r in self._rules_for(user, a.namespace))


def _subject_matches(
    subject: JSON, mine: list[tuple[str, str, str | None]], binding_ns: str | None
) -> bool:
    kind, name = subject.get("kind"), subject.get("name")
    for k, n, ns in mine:
        if k != kind or n != name:
            continue
        # A ServiceAccount subject names its namespace (default: the binding's).
        if k == "ServiceAccount" and (subject.get("namespace") or binding_ns) != ns:
            continue
        return True
    return False


def forbidden_text(user: str, a: Attributes) -> str:
    """The apiserver's RBAC denial message for `a`."""
    subject = f"{a.resource.split('/')[0]}.{a.group}" if a.group else a.resource.split("/")[0]
    if a.name:
        subject += f' "{a.name}"'
    where = f' in the namespace "{a.namespace}"' if a.namespace else " at the cluster scope"
    return (
        f'{subject} is forbidden: User "{user}" cannot {a.verb} resource "{a.resource}" '
        f'in API group "{a.group}"{where}'
    )


def self_subject_review(user: UserInfo) -> JSON:
    """The answer to POST /apis/authentication.k8s.io/v1/selfsubjectreviews."""
    return {
        "kind": "SelfSubjectReview",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"creationTimestamp": None},
        "status": {"userInfo": user.to_json()},
    }


def access_review_attributes(body: JSON) -> Attributes:
    """spec.resourceAttributes of a SelfSubjectAccessReview as Attributes (ValueError
    when it has none)."""
    ra = (body.get("spec") or {}).get("resourceAttributes")
    if not isinstance(ra, dict):
        raise ValueError(
            "spec.resourceAttributes: Required value (nonResourceAttributes unsupported)"
        )
    resource = str(ra.get("resource") or "")
    if ra.get("subresource"):
        resource += f"/{ra['subresource']}"
    return Attributes(
        verb=str(ra.get("verb") or ""),
        group=str(ra.get("group") or ""),
        resource=resource,
        name=ra.get("name") or None,
        namespace=ra.get("namespace") or None,
    )


def self_subject_access_review(body: JSON, allowed: bool, reason: str) -> JSON:
    """The answer to POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews: the
    spec as sent, and the decision."""
    status: JSON = {"allowed": allowed}
    if reason:
        status["reason"] = reason
    return {
        "kind": "SelfSubjectAccessReview",
        "apiVersion": "authorization.k8s.io/v1",
        "metadata": {"creationTimestamp": None},
        "spec": body.get("spec") or {},
        "status": status,
    }
