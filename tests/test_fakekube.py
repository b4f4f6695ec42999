# Generated models make every field Optional; asserting on them is the point here.
# mypy: disable-error-code="union-attr,arg-type"
"""The fake API server keeps the contract the real one does, as the official client sees it.

Other tests trust its answers; these pin them down: object shapes, patch types,
optimistic concurrency on Leases (for claims), watch semantics, auth and restarts.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException
from kubernetes.leaderelection.leaderelectionrecord import LeaderElectionRecord
from kubernetes.leaderelection.resourcelock.leaselock import LeaseLock

from tests.support.fakekube import FakeKube, now_micro
from tests.support.isolation import starts_servers
from tests.support.waits import wait_for

NS = "court-listener"


@pytest.fixture
@starts_servers
def kube() -> Iterator[FakeKube]:
    with FakeKube(NS) as k:
        k.add_deployment(
            "celery-batch0", replicas=2, ready=2, labels={"app": "b0", "tier": "batch"}
        )
        k.add_deployment(
            "celery-batch1", replicas=0, ready=0, labels={"app": "b1", "tier": "batch"}
        )
        k.add_deployment("web", replicas=1, ready=1, labels={"app": "web"})
        k.add_deployment("celery-batch0", namespace="other", replicas=9, ready=9)
        yield k


@pytest.fixture
def api_client(kube: FakeKube, tmp_path: Path) -> Iterator[client.ApiClient]:
    conf = client.Configuration()
    config.load_kube_config(
        config_file=str(kube.write_kubeconfig(tmp_path)),
        client_configuration=conf,
        persist_config=False,
    )
    api = client.ApiClient(conf)
    yield api
    api.close()


@pytest.fixture
def apps(api_client: client.ApiClient) -> client.AppsV1Api:
    return client.AppsV1Api(api_client)


@pytest.fixture
def coord(api_client: client.ApiClient) -> client.CoordinationV1Api:
    return client.CoordinationV1Api(api_client)


def raw(kube: FakeKube, path: str, token: str | None = None) -> tuple[int, Any]:
    req = urllib.request.Request(kube.url + path)
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


# ---------------------------------------------------------------------------- objects


def test_deployments_look_like_real_ones(kube: FakeKube, apps: client.AppsV1Api) -> None:
    lst = apps.list_namespaced_deployment(NS)
    assert int(lst.metadata.resource_version) == kube.resource_version
    assert [d.metadata.name for d in lst.items] == ["celery-batch0", "celery-batch1", "web"]
    d = apps.read_namespaced_deployment("celery-batch0", NS)
    assert d.kind == "Deployment" and d.api_version == "apps/v1"
    assert d.metadata.uid and d.metadata.generation == 1 and d.metadata.namespace == NS
    assert d.spec.selector.match_labels == {"app": "b0", "tier": "batch"}
    assert d.spec.template.spec.containers[0].name == "worker"
    assert (d.status.replicas, d.status.ready_replicas, d.status.available_replicas) == (2, 2, 2)
    assert d.status.observed_generation == 1

    # Zero counts are omitted from status, as the apiserver's omitempty does.
    raw_status = kube.deployment("celery-batch1")["status"]
    assert not {"replicas", "readyReplicas", "availableReplicas"} & set(raw_status)
    assert apps.read_namespaced_deployment("celery-batch1", NS).status.ready_replicas is None


def test_set_replicas_bumps_resource_version_and_generation(kube: FakeKube) -> None:
    before = kube.deployment("celery-batch0")["metadata"]
    rv = kube.set_replicas("celery-batch0", spec=5, ready=3)
    after = kube.deployment("celery-batch0")
    assert rv == int(after["metadata"]["resourceVersion"]) > int(before["resourceVersion"])
    assert after["metadata"]["generation"] == before["generation"] + 1
    assert after["status"]["readyReplicas"] == 3 and after["status"]["replicas"] == 5
    kube.set_replicas("celery-batch0", ready=4)  # status only: generation unchanged
    assert kube.deployment("celery-batch0")["metadata"]["generation"] == before["generation"] + 1


def test_missing_objects_are_404_status(apps: client.AppsV1Api) -> None:
    with pytest.raises(ApiException) as info:
        apps.read_namespaced_deployment("nope", NS)
    assert info.value.status == 404
    body = json.loads(info.value.body)
    assert body["kind"] == "Status" and body["reason"] == "NotFound"
    assert body["message"] == 'deployments.apps "nope" not found'


def test_auth_is_required(kube: FakeKube) -> None:
    assert raw(kube, "/version")[0] == 401
    code, body = raw(kube, "/version", token="wrong")
    assert (code, body["reason"]) == (401, "Unauthorized")
    assert raw(kube, "/version", token=kube.token)[0] == 200


# ---------------------------------------------------------------------------- scale


@pytest.mark.parametrize(
    ("body", "content_type", "sent_type"),
    [
        ({"spec": {"replicas": 4}}, None, "application/strategic-merge-patch+json"),
        ({"spec": {"replicas": 4}}, "application/merge-patch+json", "application/merge-patch+json"),
        (
            [{"op": "replace", "path": "/spec/replicas", "value": 4}],
            None,
            "application/json-patch+json",
        ),
    ],
)
def test_scale_patch_types(
    kube: FakeKube,
    apps: client.AppsV1Api,
    body: Any,
    content_type: str | None,
    sent_type: str,
) -> None:
    kwargs = {"_content_type": content_type} if content_type else {}
    scale = apps.patch_namespaced_deployment_scale("celery-batch0", NS, body, **kwargs)
    assert (scale.kind, scale.api_version, scale.spec.replicas) == ("Scale", "autoscaling/v1", 4)
    assert scale.status.selector == "app=b0,tier=batch"
    assert kube.requests[-1].content_type == sent_type
    assert kube.replicas("celery-batch0") == 4


def test_scale_rejects_bad_input(kube: FakeKube, apps: client.AppsV1Api) -> None:
    with pytest.raises(ApiException) as info:
        apps.patch_namespaced_deployment_scale(
            "celery-batch0",
            NS,
            {"spec": {"replicas": -1}},
            _content_type="application/merge-patch+json",
        )
    assert info.value.status == 422
    with pytest.raises(ApiException) as info:
        apps.patch_namespaced_deployment_scale(
            "celery-batch0",
            NS,
            {"spec": {"replicas": 1}},
            _content_type="application/apply-patch+yaml",
        )
    assert info.value.status == 415
    with pytest.raises(ApiException) as info:
        apps.patch_namespaced_deployment_scale(
            "celery-batch0", NS, [{"op": "test", "path": "/spec/replicas", "value": 7}]
        )
    assert info.value.status == 422
    assert kube.replicas("celery-batch0") == 2


def test_scale_put_and_stale_resource_version(kube: FakeKube, apps: client.AppsV1Api) -> None:
    scale = apps.read_namespaced_deployment_scale("celery-batch0", NS)
    scale.spec.replicas = 3
    assert apps.replace_namespaced_deployment_scale("celery-batch0", NS, scale).spec.replicas == 3
    scale.spec.replicas = 6  # scale still carries the old resourceVersion
    with pytest.raises(ApiException) as info:
        apps.replace_namespaced_deployment_scale("celery-batch0", NS, scale)
    assert info.value.status == 409
    assert kube.replicas("celery-batch0") == 3


def test_forced_403_names_verb_and_resource(kube: FakeKube, apps: client.AppsV1Api) -> None:
    kube.fail(403, method="PATCH", path="/scale$")
    with pytest.raises(ApiException) as info:
        apps.patch_namespaced_deployment_scale("celery-batch0", NS, {"spec": {"replicas": 1}})
    message = json.loads(info.value.body)["message"]
    assert message == (
        'deployments.apps "celery-batch0" is forbidden: User '
        f'"{kube.user}" cannot patch resource "deployments/scale" in API group "apps" '
        f'in the namespace "{NS}"'
    )


# ---------------------------------------------------------------------------- leases


def lease_body(holder: str, name: str = "batch1-claim") -> dict[str, Any]:
    return {
        "metadata": {"name": name, "annotations": {"batchctl/purpose": "reindex"}},
        "spec": {
            "holderIdentity": holder,
            "leaseDurationSeconds": 3600,
            "acquireTime": now_micro(),
            "renewTime": now_micro(),
        },
    }


def test_lease_lifecycle_and_conflicts(kube: FakeKube, coord: client.CoordinationV1Api) -> None:
    created = coord.create_namespaced_lease(NS, lease_body("alice"))
    assert created.spec.holder_identity == "alice" and created.metadata.resource_version
    assert created.metadata.annotations == {"batchctl/purpose": "reindex"}
    with pytest.raises(ApiException) as info:
        coord.create_namespaced_lease(NS, lease_body("bob"))
    assert (info.value.status, json.loads(info.value.body)["reason"]) == (409, "AlreadyExists")

    # Replace with the resourceVersion read: accepted once, then stale.
    lease = coord.read_namespaced_lease("batch1-claim", NS)
    lease.spec.holder_identity = "bob"
    replaced = coord.replace_namespaced_lease("batch1-claim", NS, lease)
    assert replaced.spec.holder_identity == "bob"
    assert replaced.metadata.resource_version != lease.metadata.resource_version
    lease.spec.holder_identity = "carol"
    with pytest.raises(ApiException) as info:
        coord.replace_namespaced_lease("batch1-claim", NS, lease)
    assert info.value.status == 409
    # An update must say which version it replaces.
    lease.metadata.resource_version = None
    with pytest.raises(ApiException) as info:
        coord.replace_namespaced_lease("batch1-claim", NS, lease)
    assert info.value.status == 422

    # Patches: unconditional, or conditional on a resourceVersion.
    patched = coord.patch_namespaced_lease(
        "batch1-claim",
        NS,
        {"spec": {"renewTime": now_micro()}},
        _content_type="application/merge-patch+json",
    )
    assert patched.spec.holder_identity == "bob"
    stale = {"metadata": {"resourceVersion": replaced.metadata.resource_version}}
    with pytest.raises(ApiException) as info:
        coord.patch_namespaced_lease("batch1-claim", NS, {**stale, "spec": {"holderIdentity": "x"}})
    assert info.value.status == 409
    assert (kube.lease("batch1-claim") or {})["spec"]["holderIdentity"] == "bob"

    coord.delete_namespaced_lease("batch1-claim", NS)
    assert kube.lease("batch1-claim") is None
    with pytest.raises(ApiException) as info:
        coord.read_namespaced_lease("batch1-claim", NS)
    assert info.value.status == 404


def test_official_lease_lock_works_against_the_fake(
    kube: FakeKube, coord: client.CoordinationV1Api
) -> None:
    def lock(identity: str) -> LeaseLock:
        lk = LeaseLock("batchctl-autoscaler", NS, identity)
        lk.api_instance = coord  # the library builds a default client otherwise
        return lk

    now = "2025-01-01 10:00:00.000000"
    a, b = lock("a"), lock("b")
    assert a.create(a.name, NS, LeaderElectionRecord("a", "15", now, now))
    ok, record = b.get(b.name, NS)
    assert ok and record.holder_identity == "a"
    # Both hold the same version; the first update wins, the second is stale.
    later = "2025-01-01 10:00:05.000000"
    assert a.update(a.name, NS, LeaderElectionRecord("a", "15", now, later))
    assert not b.update(b.name, NS, LeaderElectionRecord("b", "15", later, later))
    assert (kube.lease("batchctl-autoscaler") or {})["spec"]["holderIdentity"] == "a"


# ---------------------------------------------------------------------------- watch


def test_watch_without_rv_starts_with_synthetic_added(
    kube: FakeKube, apps: client.AppsV1Api
) -> None:
    events = []
    for ev in watch.Watch().stream(
        apps.list_namespaced_deployment, NS, label_selector="tier=batch", timeout_seconds=1
    ):
        events.append((ev["type"], ev["object"].metadata.name))
    assert events == [("ADDED", "celery-batch0"), ("ADDED", "celery-batch1")]


def test_watch_replays_history_and_filters(kube: FakeKube, apps: client.AppsV1Api) -> None:
    rv = str(kube.resource_version)
    kube.set_replicas("web", spec=2)
    kube.set_replicas("celery-batch1", spec=1, namespace=NS)
    kube.set_replicas("celery-batch0", spec=1, namespace="other")
    kube.delete_deployment("celery-batch0")
    events = [
        (ev["type"], ev["raw_object"]["metadata"]["name"])
        for ev in watch.Watch().stream(
            apps.list_namespaced_deployment,
            NS,
            resource_version=rv,
            field_selector="metadata.name!=web",
            timeout_seconds=1,
        )
    ]
    assert events == [("MODIFIED", "celery-batch1"), ("DELETED", "celery-batch0")]


def test_live_events_reach_an_open_watch(kube: FakeKube, apps: client.AppsV1Api) -> None:
    w = watch.Watch()
    seen: list[tuple[str, int]] = []

    def consume() -> None:
        for ev in w.stream(
            apps.list_namespaced_deployment,
            NS,
            resource_version=str(kube.resource_version),
            timeout_seconds=10,
        ):
            seen.append((ev["object"].metadata.name, ev["object"].spec.replicas))
            w.stop()

    t = threading.Thread(target=consume)
    t.start()
    wait_for(lambda: kube.open_watches == 1, 5, what="a watch")
    kube.set_replicas("celery-batch1", spec=3)
    t.join(5)
    assert seen == [("celery-batch1", 3)]
    wait_for(lambda: kube.open_watches == 0, 5, what="the server to notice the hang-up")


def test_expired_watch_gets_410(kube: FakeKube, apps: client.AppsV1Api) -> None:
    rv = str(kube.resource_version)
    kube.set_replicas("web", spec=5)
    kube.compact()
    for mode in ("event", "status"):
        kube.expired_watch = mode  # type: ignore[assignment]
        with pytest.raises(ApiException) as info:
            list(
                watch.Watch().stream(
                    apps.list_namespaced_deployment, NS, resource_version=rv, timeout_seconds=2
                )
            )
        assert info.value.status == 410


def test_down_and_up_keep_port_and_objects(kube: FakeKube, apps: client.AppsV1Api) -> None:
    port = kube.port
    kube.down()
    assert not kube.is_up
    with pytest.raises(Exception, match=r"(?i)refused"):
        apps.list_namespaced_deployment(NS, _request_timeout=1)
    kube.set_replicas("web", spec=4)  # the state lives on while the listener is down
    kube.up()
    assert kube.port == port
    assert apps.read_namespaced_deployment("web", NS).spec.replicas == 4


def test_requests_are_recorded(kube: FakeKube, apps: client.AppsV1Api) -> None:
    apps.patch_namespaced_deployment_scale("web", NS, {"spec": {"replicas": 0}})
    (req,) = kube.requests_to("PATCH")
    assert req.path == f"/apis/apps/v1/namespaces/{NS}/deployments/web/scale"
    assert req.json() == {"spec": {"replicas": 0}}
    assert req.headers["authorization"] == f"Bearer {kube.token}"
    kube.clear_requests()
    assert kube.requests == []


# -- pods and the ReplicaSet controller (FakeKube(pods=True)) -------------------------

DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"


@pytest.fixture
@starts_servers
def with_pods(tmp_path: Path) -> Iterator[tuple[FakeKube, client.CoreV1Api, client.AppsV1Api]]:
    with FakeKube(NS, pods=True, auto_ready=True) as k:
        k.add_deployment("celery-batch0", replicas=4, ready=4, labels={"app": "b0"})
        k.add_deployment("web", replicas=1, ready=1, labels={"app": "web"})
        conf = client.Configuration()
        config.load_kube_config(
            config_file=str(k.write_kubeconfig(tmp_path)),
            client_configuration=conf,
            persist_config=False,
        )
        api = client.ApiClient(conf)
        yield k, client.CoreV1Api(api), client.AppsV1Api(api)
        api.close()


def test_pods_are_listed_by_selector_and_owned_by_their_replicaset(
    with_pods: tuple[FakeKube, client.CoreV1Api, client.AppsV1Api],
) -> None:
    _, core, _ = with_pods
    pods = core.list_namespaced_pod(NS, label_selector="app=b0").items
    assert len(pods) == 4
    for p in pods:
        hash_ = p.metadata.labels["pod-template-hash"]
        (owner,) = p.metadata.owner_references
        assert (owner.kind, owner.name) == ("ReplicaSet", f"celery-batch0-{hash_}")
        assert p.metadata.name.startswith(f"celery-batch0-{hash_}-")
        assert p.status.phase == "Running" and p.spec.containers


def test_a_scale_down_removes_pods_in_the_replicasets_order(
    with_pods: tuple[FakeKube, client.CoreV1Api, client.AppsV1Api],
) -> None:
    """Not ready first, then the lower pod-deletion-cost, then the newest."""
    kube, core, apps = with_pods
    first, second, third, fourth = (p["metadata"]["name"] for p in kube.pods("celery-batch0"))
    kube.set_pod_ready(third, False)
    for name, cost in ((first, "-5"), (second, "10"), (fourth, "10")):
        body = {"metadata": {"annotations": {DELETION_COST: cost}}}
        core.patch_namespaced_pod(name, NS, body)
    apps.patch_namespaced_deployment_scale("celery-batch0", NS, {"spec": {"replicas": 1}})
    assert kube.deleted_pods == [third, first, fourth]
    assert [p["metadata"]["name"] for p in kube.pods("celery-batch0")] == [second]


def test_a_deletion_cost_that_is_not_an_int32_is_refused(
    with_pods: tuple[FakeKube, client.CoreV1Api, client.AppsV1Api],
) -> None:
    kube, core, _ = with_pods
    name = kube.pods("celery-batch0")[0]["metadata"]["name"]
    for bad in ("1.5", "2147483648", "cheap"):
        with pytest.raises(ApiException) as e:
            core.patch_namespaced_pod(name, NS, {"metadata": {"annotations": {DELETION_COST: bad}}})
        assert e.value.status == 422
