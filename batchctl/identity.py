"""Who the cluster says the caller is: SelfSubjectReview, as `kubectl auth whoami` asks it.

POST /apis/authentication.k8s.io/v1/selfsubjectreviews with an empty object; the answer's
`status.userInfo.username` (and `groups`) is the identity the API server authenticated
from the kubeconfig's credentials (a token, a client certificate, an exec plugin's
OIDC token...), the name RBAC decides on: a person's user name or e-mail, or
`system:serviceaccount:NAMESPACE:NAME` inside a pod. Every authenticated user may ask
(the bootstrap ClusterRole system:basic-user). The API is GA since Kubernetes 1.28; an
older cluster answers 404, and then the caller has only the names it gives itself.

And whether the caller may do something (`may`): a SelfSubjectAccessReview
(authorization.k8s.io/v1, `kubectl auth can-i`), answered by the cluster's RBAC.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from batchctl.kuberest import NOT_FOUND, as_dict, call_json

REVIEW_PATH = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
ACCESS_REVIEW_PATH = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
VERIFIED = "the cluster (SelfSubjectReview)"


@dataclass(frozen=True)
class Identity:
    """A caller's name; `verified` when the API server said it (SelfSubjectReview), else
    `source` names where it came from (--holder, $USER...)."""

    name: str
    verified: bool
    source: str = VERIFIED
    groups: tuple[str, ...] = ()

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "verified": self.verified,
            "source": self.source,
            "groups": list(self.groups),
        }

    @property
    def shown(self) -> str:
        return self.name if self.verified else f"{self.name} (unverified)"


def who_am_i(api_client: client.ApiClient, timeout: float) -> Identity | None:
    """The caller's identity as the API server authenticated it; None when the cluster
    does not serve SelfSubjectReview (404: older than 1.28). Raises ApiException (401:
    credentials refused) and whatever urllib3 raises when there is no answer, and
    ValueError for an answer without a user name."""
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    try:
        answer = call_json(api_client, "POST", REVIEW_PATH, timeout=timeout, body=body)
    except ApiException as e:
        if e.status == NOT_FOUND:
            return None
        raise
    info = as_dict(as_dict(as_dict(answer).get("status")).get("userInfo"))
    name = info.get("username")
    if not isinstance(name, str) or not name:
        raise ValueError("the SelfSubjectReview answer carries no status.userInfo.username")
    groups = info.get("groups")
    return Identity(
        name,
        True,
        groups=tuple(g for g in groups if isinstance(g, str)) if isinstance(groups, list) else (),
    )


def may(
    api_client: client.ApiClient,
    timeout: float,
    *,
    verb: str,
    group: str,
    resource: str,
    namespace: str,
    name: str | None = None,
) -> tuple[bool, str]:
    """Whether the caller may `verb` the resource (RBAC's answer), and its reason. Raises
    ApiException and urllib3's errors like any request."""
    attributes: dict[str, Any] = {
        "namespace": namespace,
        "verb": verb,
        "group": group,
        "resource": resource,
    }
    if name:
        attributes["name"] = name
    body = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": attributes},
    }
    answer = as_dict(call_json(api_client, "POST", ACCESS_REVIEW_PATH, timeout=timeout, body=body))
    status = as_dict(answer.get("status"))
    return bool(status.get("allowed")), str(status.get("reason") or "")


__all__ = ["VERIFIED", "Identity", "may", "who_am_i"]
