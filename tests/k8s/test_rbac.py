"""The Role, proven from the code: every call batchctl makes is allowed, every rule is used.

`batchctl exporter` and `batchctl autoscaler --backend kubernetes` run as users run them
(processes, the shipped config, the claims in Leases as the base Deployment sets it)
against the fake API server, which records every request the official client sends,
and so does the CLI run inside the pod (`batchctl status`, as the service account).
Each request becomes (verb, group, resource, name) the way the apiserver's RBAC sees
it, and is checked against the Roles the example overlay renders and binds to the
ServiceAccount batchctl (the base's batchctl, the rendered batchctl-scale and
batchctl-claims). Asking who we are or what we may do (SelfSubjectReview,
SelfSubjectAccessReview) is every authenticated user's (system:basic-user).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from batchctl.demo.tasks import enqueue, make_app
from tests.support.fakekube import FakeKube, Request
from tests.support.isolation import starts_servers
from tests.support.kustomize import K8S, Doc, kustomize, one
from tests.support.leases import lease_store
from tests.support.paths import BATCHCTL
from tests.support.servers.redis import EmbeddedRedis, free_port
from tests.support.waits import wait_for
from tests.support.workers import heartbeats

NS = "court-listener"

_PATH = re.compile(
    r"^/(?:api/v1|apis/(?P<group>[^/]+)/[^/]+)/namespaces/(?P<ns>[^/]+)/(?P<resource>[^/]+)"
    r"(?:/(?P<name>[^/]+))?(?:/(?P<sub>[^/]+))?/?$"
)
# The service proxy: services/proxy, the name segment as written (port included).
_PROXY = re.compile(r"^/api/v1/namespaces/(?P<ns>[^/]+)/services/(?P<name>[^/]+)/proxy(/.*)?$")
SELF_REVIEWS = ("/apis/authentication.k8s.io/v1/selfsubjectreviews",
                "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews")  # fmt: skip
_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


@dataclass(frozen=True)
class Call:
    """A request as RBAC authorizes it."""

    verb: str
    group: str
    resource: str  # with its subresource: deployments/scale
    name: str | None
    namespace: str


def as_call(req: Request) -> Call:
    if (p := _PROXY.match(req.path)) is not None:
        return Call(_VERBS.get(req.method, "get"), "", "services/proxy", p["name"], p["ns"])
    m = _PATH.match(req.path)
    assert m is not None, f"not a namespaced resource request: {req.method} {req.path}"
    if req.method == "GET":
        verb = "get" if m["name"] else ("watch" if req.is_watch else "list")
    else:
        verb = _VERBS[req.method]
    resource = f"{m['resource']}/{m['sub']}" if m["sub"] else m["resource"]
    return Call(verb, m["group"] or "", resource, m["name"], m["ns"])


def allows(rule: Doc, call: Call) -> bool:
    if call.group not in rule["apiGroups"] or call.resource not in rule["resources"]:
        return False
    if call.verb not in rule["verbs"]:
        return False
    # resourceNames cannot allow list, watch (of a collection) or create: no name.
    names = rule.get("resourceNames")
    return not names or call.name in names


def atoms(rule: Doc) -> list[tuple[str, str, str, str | None]]:
    """Each (verb, group, resource, name) a rule grants; name None: any."""
    names = rule.get("resourceNames") or [None]
    return [
        (verb, group, resource, name)
        for verb in rule["verbs"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for name in names
    ]


EXAMPLE = K8S / "overlays" / "example"


@pytest.fixture(scope="module")
@starts_servers
def role() -> Doc:
    """Every rule of every Role bound to the ServiceAccount batchctl, as one Role."""
    docs = kustomize(EXAMPLE)
    bound = {
        b["roleRef"]["name"]
        for b in docs
        if b["kind"] == "RoleBinding"
        and {"kind": "ServiceAccount", "name": "batchctl", "namespace": NS} in b["subjects"]
    }
    assert bound == {"batchctl", "batchctl-scale", "batchctl-claims"}
    one(docs, "Role", "batchctl-scale")
    rules = [r for d in docs if d["kind"] == "Role" and d["metadata"]["name"] in bound
             for r in d["rules"]]  # fmt: skip
    return {"kind": "Role", "rules": rules}


def run_batchctl_against(kube: FakeKube, redis_url: str, tmp_path: Path) -> None:
    """Both containers' commands with the shipped config and the base Deployment's
    environment, until every batch has scaled (each from 0 to 1, but batch0 from 2 down
    to its cap of 1, ranking its pods first: their workers' heartbeats make the busy
    map) and the sidecar has kept the claims; and the CLI inside the pod."""
    cfg = yaml.safe_load((EXAMPLE / "batchctl.yml").read_text())
    cfg["kubernetes"].update({"namespace": NS, "kubeconfig": str(kube.write_kubeconfig(tmp_path))})
    cfg["autoscaler"]["interval_seconds"] = 0.2
    for b in cfg["batches"]:
        b["autoscale"] = True
    cfg["batches"][0]["max_replicas"] = 1
    path = tmp_path / "batchctl.yml"
    path.write_text(yaml.safe_dump(cfg))
    env = {**os.environ, "BATCHCTL_BROKER_URL": redis_url, "BATCHCTL_CONFIG": str(path)}
    env["BATCHCTL_CLAIMS_STORE"] = "kubernetes"  # as k8s/base/deployment.yaml sets it
    env.pop("KUBERNETES_SERVICE_HOST", None)
    procs = []
    ports = {"exporter": free_port(), "autoscaler": free_port()}
    # The sidecar reads the exporter beside it (here not on the default port).
    cfg["autoscaler"]["snapshot_url"] = f"http://127.0.0.1:{ports['exporter']}"
    path.write_text(yaml.safe_dump(cfg))
    kube.add_service("batchctl", {9808: f"http://127.0.0.1:{ports['exporter']}"})
    try:
        for command, port in ports.items():
            argv = [BATCHCTL, "--log-format", "json", command, "-c", str(path)]
            argv += ["--listen", f"127.0.0.1:{port}"]
            out = subprocess.DEVNULL
            procs.append(subprocess.Popen(argv, stdout=out, stderr=out, env=env))
        deployments = [b["deployment"] for b in cfg["batches"]]
        wait_for(
            lambda: all(kube.replicas(d) == 1 for d in deployments),
            timeout=60,
            what="the autoscaler scaling every batch from 0 to 1",
        )
        # One observer per pod: only the exporter watches the Deployments.
        wait_for(lambda: kube.open_watches >= 1, what="the exporter watching")
        # A claim that lapses: the sidecar records the expiry (get, update of its Lease)
        # and copies the event into the history ring it created (create, get, update).
        store = lease_store(kube, tmp_path, filename="claims-kubeconfig")
        queues = [b["queue"] for b in cfg["batches"]]
        for q in queues:
            store.take(q, "alice", "rbac test", 1, time.time() - 3600)
        wait_for(
            lambda: all((c := store.get(q)) is not None and c.expiry_noted for q in queues),
            timeout=30,
            what="the sidecar recording the expiries",
        )
        wait_for(
            lambda: "expired" in str(kube.configmap("batchctl-claim-history-0")),
            timeout=30,
            what="the sidecar copying the expiry into the history ring",
        )
        store.close()
        # The CLI inside the pod: the site's config (BATCHCTL_CONFIG), as the pod.
        status = subprocess.run(
            [BATCHCTL, "status", "-o", "json"], env=env, capture_output=True, text=True,
            timeout=60,
        )  # fmt: skip
        assert status.returncode == 0, status.stderr
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            assert p.wait(timeout=30) == 0


@pytest.fixture(scope="module")
@starts_servers
def calls(tmp_path_factory: pytest.TempPathFactory) -> set[Call]:
    """Every call of one end-to-end run (a Redis of its own: the run spans the tests)."""
    tmp = tmp_path_factory.mktemp("rbac")
    cfg = yaml.safe_load((EXAMPLE / "batchctl.yml").read_text())
    with EmbeddedRedis() as server, FakeKube(NS, pods=True, auto_ready=True) as kube:
        app = make_app(server.url)
        store = lease_store(kube, tmp, filename="setup-kubeconfig")
        for i, b in enumerate(cfg["batches"]):
            start = 2 if i == 0 else 0
            kube.add_deployment(b["deployment"], replicas=start, ready=start)
            store.claim(b["queue"], "alice", "rbac test", 3600, time.time())
            enqueue(app, b["queue"], 3, seconds=0)
        store.close()
        pods = [p["metadata"]["name"] for p in kube.pods(cfg["batches"][0]["deployment"])]
        kube.clear_requests()  # the setup's own calls are the test's, not batchctl's
        with heartbeats(server.url, [f"{cfg['batches'][0]['queue']}@{p}" for p in pods]):
            run_batchctl_against(kube, server.url, tmp)
        own = [r for r in kube.requests if r.path not in SELF_REVIEWS]
        return {as_call(r) for r in own}


def test_the_code_paths_ran(calls: set[Call]) -> None:
    """The recording covers what each container does: the exporter's list+watch cache,
    the autoscaler's Lease (leader election and its handover record), scale writes and
    Events."""
    verbs = {(c.verb, c.resource) for c in calls}
    assert {("list", "deployments"), ("watch", "deployments")} <= verbs
    assert ("patch", "deployments/scale") in verbs
    assert {("create", "leases"), ("get", "leases"), ("update", "leases")} <= verbs
    assert ("create", "events") in verbs
    # The busy map: the batch's pods listed, and ranked before the scale-down.
    assert {("list", "pods"), ("patch", "pods")} <= verbs
    # Before writing replicas: another controller of the same Deployment? (KEDA is not
    # installed here: its list answers 404, and is still a call RBAC must allow.)
    assert {("list", "horizontalpodautoscalers"), ("list", "scaledobjects")} <= verbs
    # The claims in Leases: watched (exporter, sidecar), kept (sidecar), mirrored into
    # the history ring; the CLI in the pod reads the exporter through the API server.
    assert {("list", "leases"), ("watch", "leases")} <= verbs
    assert {("create", "configmaps"), ("get", "configmaps"), ("update", "configmaps")} <= verbs
    assert ("get", "services/proxy") in verbs
    assert {c.namespace for c in calls} == {NS}


def test_every_call_is_allowed_by_the_role(role: Doc, calls: set[Call]) -> None:
    denied = [c for c in calls if not any(allows(r, c) for r in role["rules"])]
    assert denied == []


def _segment(name: str | None) -> str | None:
    """The history ring's ten ConfigMaps are one object used in turn: a short run reads
    all of them and writes the first, so they count as one name."""
    return "batchctl-claim-history-*" if name and _RING.match(name) else name


_RING = re.compile(r"^batchctl-claim-history-\d+$")


def test_every_rule_is_used(role: Doc, calls: set[Call]) -> None:
    unused = {
        (*a[:3], _segment(a[3]))
        for r in role["rules"]
        for a in atoms(r)
        if not any(
            (c.verb, c.group, c.resource) == a[:3]
            and (a[3] is None or _segment(c.name) == _segment(a[3]))
            for c in calls
        )
    }
    assert unused == set()


def test_the_check_itself_denies(role: Doc) -> None:
    """What the Role must refuse, so that an `allows` that says yes to all cannot pass."""
    refused = [
        Call("get", "apps", "deployments", "celery-batch0", NS),
        Call("patch", "apps", "deployments", "celery-batch0", NS),
        Call("patch", "apps", "deployments/scale", "batchctl", NS),
        Call("update", "coordination.k8s.io", "leases", "someone-else", NS),
        Call("list", "", "secrets", None, NS),
    ]
    assert [c for c in refused if any(allows(r, c) for r in role["rules"])] == []


def test_request_classification() -> None:
    def req(method: str, path: str, watch: bool = False) -> Request:
        return Request(method, path, {"watch": "true"} if watch else {}, {}, b"")

    base = f"/apis/apps/v1/namespaces/{NS}/deployments"
    assert as_call(req("GET", base)) == Call("list", "apps", "deployments", None, NS)
    assert as_call(req("GET", base, watch=True)).verb == "watch"
    assert as_call(req("PATCH", f"{base}/d/scale")) == Call(
        "patch", "apps", "deployments/scale", "d", NS
    )
    assert as_call(req("POST", f"/api/v1/namespaces/{NS}/events")) == Call(
        "create", "", "events", None, NS
    )
