"""The fake API server keeps the real one's contract on who calls and what they may do.

Other tests trust these answers (tests/batchctl/cli/test_claims_in_cluster.py runs the
shipped RBAC on it): bearer tokens mapped to users, SelfSubjectReview and
SelfSubjectAccessReview as the API serves them, RBAC with resourceNames and custom verbs
and its 403 Status, ConfigMaps, annotation limits, and the service proxy. All through
the official client or plain HTTP, as a client sees them.
"""

from __future__ import annotations

import http.server
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from batchctl.identity import may, who_am_i
from batchctl.kube import new_api_client
from tests.support.fakekube import FakeKube
from tests.support.isolation import starts_servers
from tests.support.leases import kube_config
from tests.support.servers.network import closed_port

NS = "court-listener"
LEASE = {"metadata": {"name": "l1"}, "spec": {"holderIdentity": "alice"}}


@pytest.fixture
@starts_servers
def kube() -> Iterator[FakeKube]:
    with FakeKube(NS) as k:
        yield k


def api_for(kube: FakeKube, tmp: Path, token: str | None = None) -> client.ApiClient:
    return new_api_client(kube_config(kube, tmp, token=token, filename=f"kc-{token or 'sa'}"))


def raw(kube: FakeKube, path: str, token: str | None) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(kube.url + path)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def test_self_subject_review_names_the_tokens_user(kube: FakeKube, tmp_path: Path) -> None:
    alice = kube.add_user("alice", groups=("team-a",))
    me = who_am_i(api_for(kube, tmp_path, alice), 2)
    assert me is not None and (me.name, me.verified) == ("alice", True)
    assert me.groups == ("team-a", "system:authenticated")
    sa = who_am_i(api_for(kube, tmp_path), 2)
    assert sa is not None and sa.name == f"system:serviceaccount:{NS}:batchctl"
    assert "system:serviceaccounts" in sa.groups
    # An older cluster does not serve it: 404, and the client says so.
    kube.self_subject_review = False
    assert who_am_i(api_for(kube, tmp_path, alice), 2) is None


def test_an_unknown_token_is_401(kube: FakeKube, tmp_path: Path) -> None:
    with pytest.raises(ApiException) as info:
        who_am_i(api_for(kube, tmp_path, "not-a-token"), 2)
    assert info.value.status == 401


def test_rbac_allows_by_verb_resource_and_name(kube: FakeKube, tmp_path: Path) -> None:
    role = {
        "kind": "Role",
        "metadata": {"name": "leases-l1"},
        "rules": [
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
             "verbs": ["get", "update", "force"], "resourceNames": ["l1"]},
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
        ],
    }  # fmt: skip
    bob = kube.add_user("bob")
    kube.apply_rbac([role])
    kube.bind("leases-l1", user="bob")
    coord = client.CoordinationV1Api(api_for(kube, tmp_path, bob))
    coord.create_namespaced_lease(NS, LEASE)  # create: any name
    assert coord.read_namespaced_lease("l1", NS).spec.holder_identity == "alice"
    with pytest.raises(ApiException) as info:
        coord.list_namespaced_lease(NS)  # resourceNames never allow a list
    assert info.value.status == 403
    body = json.loads(info.value.body)
    assert (body["kind"], body["reason"], body["code"]) == ("Status", "Forbidden", 403)
    assert body["message"] == (
        'leases.coordination.k8s.io is forbidden: User "bob" cannot list resource "leases" '
        'in API group "coordination.k8s.io" in the namespace "court-listener"'
    )
    with pytest.raises(ApiException) as info:
        coord.read_namespaced_lease("l2", NS)
    assert 'leases.coordination.k8s.io "l2" is forbidden' in json.loads(info.value.body)["message"]
    # Another namespace: the Role does not reach it.
    with pytest.raises(ApiException):
        coord.read_namespaced_lease("l1", "other")
    # The access review answers by the same rules, custom verbs included.
    api = api_for(kube, tmp_path, bob)
    kw: dict[str, Any] = {"group": "coordination.k8s.io", "resource": "leases", "namespace": NS}
    assert may(api, 2, verb="force", name="l1", **kw)[0] is True
    assert may(api, 2, verb="force", name="l2", **kw)[0] is False
    assert may(api, 2, verb="delete", name="l1", **kw)[0] is False


def test_groups_and_cluster_roles_bind_too(kube: FakeKube, tmp_path: Path) -> None:
    reader = {"kind": "ClusterRole", "metadata": {"name": "lease-reader"},
              "rules": [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                         "verbs": ["list"]}]}  # fmt: skip
    carol = kube.add_user("carol", groups=("sre",))
    kube.apply_rbac([reader])
    kube.bind("lease-reader", group="sre", cluster_role=True)
    client.CoordinationV1Api(api_for(kube, tmp_path, carol)).list_namespaced_lease(NS)
    # The service account is one more subject kind, matched with its namespace.
    with pytest.raises(ApiException):
        client.CoordinationV1Api(api_for(kube, tmp_path)).list_namespaced_lease(NS)
    sa = {"kind": "ServiceAccount", "name": "batchctl", "namespace": NS}
    sa_binding = {"kind": "RoleBinding", "metadata": {"name": "sa"},
                  "roleRef": {"kind": "ClusterRole", "name": "lease-reader"},
                  "subjects": [sa]}  # fmt: skip
    kube.apply_rbac([sa_binding])
    client.CoordinationV1Api(api_for(kube, tmp_path)).list_namespaced_lease(NS)


def test_configmaps_and_the_limits_of_metadata(kube: FakeKube, tmp_path: Path) -> None:
    core = client.CoreV1Api(api_for(kube, tmp_path))
    cm = core.create_namespaced_config_map(NS, {"metadata": {"name": "c"}, "data": {"k": "v"}})
    assert (cm.kind, cm.api_version, cm.data) == ("ConfigMap", "v1", {"k": "v"})
    cm.data = {"k": "w"}
    cm = core.replace_namespaced_config_map("c", NS, cm)
    cm.data = {"k": "stale"}
    cm.metadata.resource_version = "1"
    with pytest.raises(ApiException) as info:
        core.replace_namespaced_config_map("c", NS, cm)
    assert info.value.status == 409
    with pytest.raises(ApiException) as info:
        core.create_namespaced_config_map(
            NS, {"metadata": {"name": "big"}, "data": {"k": "x" * (1024 * 1024 + 1)}}
        )
    assert info.value.status == 422 and "must have at most 1048576 bytes" in info.value.body
    coord = client.CoordinationV1Api(api_for(kube, tmp_path))
    too_many = {"metadata": {"name": "l", "annotations": {"a": "x" * (256 * 1024)}}}
    with pytest.raises(ApiException) as info:
        coord.create_namespaced_lease(NS, too_many)
    assert info.value.status == 422 and "metadata.annotations: Too long" in info.value.body
    with pytest.raises(ApiException) as info:
        coord.create_namespaced_lease(NS, {"metadata": {"name": "l", "annotations": {"a b": ""}}})
    assert info.value.status == 422


@pytest.fixture
def backend() -> Iterator[tuple[str, list[dict[str, str]]]]:
    """A real HTTP server behind the proxy; records the headers it was sent."""
    seen: list[dict[str, str]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append({k.lower(): v for k, v in self.headers.items()} | {"path": self.path})
            data = json.dumps({"path": self.path}).encode()
            self.send_response(200 if self.path.startswith("/api") else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *a: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def test_the_service_proxy(kube: FakeKube, backend: tuple[str, list[dict[str, str]]]) -> None:
    url, seen = backend
    kube.add_service("batchctl", {9808: url}, port_names={"metrics": 9808})
    base = f"/api/v1/namespaces/{NS}/services"
    code, headers, body = raw(kube, f"{base}/batchctl:9808/proxy/api/v1/snapshot?x=1", kube.token)
    assert (code, json.loads(body)) == (200, {"path": "/api/v1/snapshot?x=1"})
    assert headers["Content-Type"] == "application/json"
    assert "authorization" not in seen[-1]  # the backend never learns who called
    assert raw(kube, f"{base}/batchctl:metrics/proxy/api/v1/x", kube.token)[0] == 200
    assert raw(kube, f"{base}/batchctl:9808/proxy/nope", kube.token)[0] == 404  # the backend's
    code, _, body = raw(kube, f"{base}/other:9808/proxy/", kube.token)
    assert (code, json.loads(body)["message"]) == (404, 'services "other" not found')
    code, _, body = raw(kube, f"{base}/batchctl:1234/proxy/", kube.token)
    assert code == 503 and "no endpoints available" in json.loads(body)["message"]
    kube.add_service("down", {9808: f"http://127.0.0.1:{closed_port()}"})
    code, _, body = raw(kube, f"{base}/down:9808/proxy/api", kube.token)
    assert code == 503 and "error trying to reach service" in json.loads(body)["message"]
    # RBAC: get on services/proxy with the name as written, port included.
    role = {"kind": "Role", "metadata": {"name": "proxy"},
            "rules": [{"apiGroups": [""], "resources": ["services/proxy"], "verbs": ["get"],
                       "resourceNames": ["batchctl:9808"]}]}  # fmt: skip
    dave = kube.add_user("dave")
    kube.apply_rbac([role])
    kube.bind("proxy", user="dave")
    assert raw(kube, f"{base}/batchctl:9808/proxy/api/v1/snapshot", dave)[0] == 200
    code, _, body = raw(kube, f"{base}/batchctl:metrics/proxy/api/v1/snapshot", dave)
    assert code == 403
    assert json.loads(body)["message"] == (
        'services "batchctl:metrics" is forbidden: User "dave" cannot get resource '
        '"services/proxy" in API group "" in the namespace "court-listener"'
    )
