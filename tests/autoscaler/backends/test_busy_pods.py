"""Scaling in without stopping a busy worker, against the fake API server: the official
client lists the batch's pods, writes pod-deletion-cost, and the fake's ReplicaSet
removes pods in the order kubernetes' ReplicaSet controller does (tests/support/
fakekube/replicasets.py), so the tests see which pods go."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from autoscaler.backends import ScaleNote
from autoscaler.backends.kubernetes import KubernetesBackend
from autoscaler.backends.ranking import ANNOTATION, idle_count
from autoscaler.loop import Autoscaler
from autoscaler.metrics import AutoscalerMetrics
from autoscaler.policy import Action, Reason
from batchctl.claims import Claim
from batchctl.config import Config, parse_config
from exporter.events.model import EventsView, QueueActivity
from exporter.events.workload import WorkerLoad
from exporter.snapshot import Deployment, QueueStats, Snapshot
from tests.support.autoscaler import FixedSource
from tests.support.fakekube import FakeKube
from tests.support.isolation import starts_servers

NS = "court-listener"
DEP = "celery-batch1"
SELECTOR = {"app": DEP}


@pytest.fixture
@starts_servers
def kube() -> Iterator[FakeKube]:
    with FakeKube(NS, pods=True, auto_ready=True) as k:
        k.add_deployment(DEP, replicas=3, ready=3)
        yield k


def config(kube: FakeKube, tmp_path: Path, **batch: object) -> Config:
    return parse_config(
        {
            "broker": {"url": "redis://127.0.0.1:9/0"},
            "kubernetes": {"namespace": NS, "kubeconfig": str(kube.write_kubeconfig(tmp_path))},
            "batches": [{"queue": "batch1", "deployment": DEP, **batch}],
            "autoscaler": {"backend": "kubernetes", "leader_election": {"enabled": False}},
            "events": {"enabled": True},
        },
        env={},
    )


def pod_names(kube: FakeKube) -> list[str]:
    return [p["metadata"]["name"] for p in kube.pods(DEP)]


def costs(kube: FakeKube) -> dict[str, str | None]:
    return {
        p["metadata"]["name"]: (p["metadata"].get("annotations") or {}).get(ANNOTATION)
        for p in kube.pods(DEP)
    }


def workers(busy: dict[str, int], pods: list[str]) -> list[WorkerLoad]:
    """Each pod's worker (Celery's node name `batch1@<pod>`), running busy[pod] tasks."""
    return [WorkerLoad(f"batch1@{p}", "batch1", busy.get(p, 0), 0) for p in pods]


def test_a_scale_down_from_3_to_1_stops_the_idle_pods_only(kube: FakeKube, tmp_path: Path) -> None:
    oldest, middle, newest = pod_names(kube)
    backend = KubernetesBackend(config(kube, tmp_path))
    try:
        # The newest pod is the one the ReplicaSet would remove first: make it busy.
        replicas = backend.busy_map("batch1", workers({newest: 2}, pod_names(kube)), SELECTOR)
        assert idle_count(replicas) == 2
        note = ScaleNote(3, 1, "step_down", "", "alice", tuple(replicas))
        backend.set_replicas("batch1", 1, note)
    finally:
        backend.close()
    assert kube.replicas(DEP) == 1
    assert sorted(kube.deleted_pods) == sorted([oldest, middle])
    assert pod_names(kube) == [newest]
    # The lowest deletion cost on the idle pods, written before the scale write.
    patches = kube.requests_to("PATCH", "/api/v1/namespaces/.*/pods/")
    assert {r.path.rsplit("/", 1)[-1]: r.json()["metadata"]["annotations"] for r in patches} == {
        oldest: {ANNOTATION: "0"},
        middle: {ANNOTATION: "0"},
        newest: {ANNOTATION: "2002"},
    }
    assert all(r.content_type == "application/merge-patch+json" for r in patches)
    scale = kube.requests_to("PATCH", "/scale$")
    assert max(r.at for r in patches) < min(r.at for r in scale)
    assert costs(kube) == {newest: "2002"}


def test_without_a_busy_map_the_replicaset_picks_the_newest_busy_or_not(
    kube: FakeKube, tmp_path: Path
) -> None:
    """Today's behaviour, which the ranking exists for: the newest pods go."""
    oldest, middle, newest = pod_names(kube)
    backend = KubernetesBackend(config(kube, tmp_path))
    try:
        backend.set_replicas("batch1", 1, ScaleNote(3, 1, "step_down", "", None, None))
    finally:
        backend.close()
    assert kube.deleted_pods == [newest, middle]
    assert pod_names(kube) == [oldest]
    assert not kube.requests_to("PATCH", "/pods/")


def test_pods_not_ready_go_first_whatever_their_cost(kube: FakeKube, tmp_path: Path) -> None:
    oldest, middle, newest = pod_names(kube)
    kube.set_pod_ready(oldest, False)
    backend = KubernetesBackend(config(kube, tmp_path))
    try:
        replicas = backend.busy_map("batch1", workers({}, [middle, newest]), SELECTOR)
        assert {r.name: r.ready for r in replicas} == {oldest: False, middle: True, newest: True}
        backend.set_replicas("batch1", 2, ScaleNote(3, 2, "step_down", "", None, tuple(replicas)))
    finally:
        backend.close()
    assert kube.deleted_pods == [oldest]


def snapshot(pods: list[str], busy: dict[str, int]) -> Snapshot:
    """batch1: nothing waiting, what its workers run in flight (late acks), 3 replicas,
    claimed, and the events' busy map."""
    running = sum(busy.values())
    now = time.time()
    queue = QueueStats("batch1", 0, {}, running, 0.0, 0, True, DEP, 3, 3)
    events = EventsView(
        up=True,
        since=now - 600,
        queues=(QueueActivity("batch1", running, 3, 0, 0, True),),
        workers=tuple(workers(busy, pods)),
    )
    return Snapshot(
        taken_at=now,
        duration_seconds=0.01,
        broker_up=True,
        kubernetes_up=True,
        queues=(queue,),
        deployments={"batch1": Deployment(DEP, 3, 3, tuple(SELECTOR.items()))},
        claims={"batch1": Claim("batch1", "alice", "reindex", "", now - 600, now + 3600)},
        events=events,
    )


def test_every_pod_busy_defers_the_step_with_its_reason(kube: FakeKube, tmp_path: Path) -> None:
    """Over its cap (lowered to 1) with all three workers running a task: the step down
    waits (busy_workers), says so in an Event, writes nothing; once a worker is idle, its
    pod is the one that goes."""
    pods = pod_names(kube)
    cfg = config(kube, tmp_path, max_replicas=1, step_interval_seconds=1)
    source = FixedSource(snapshot(pods, {p: 1 for p in pods}))
    backend = KubernetesBackend(cfg)
    try:
        scaler = Autoscaler(cfg, source, backend)
        (d,) = scaler.tick()
        assert (d.desired, d.reason, d.action) == (3, Reason.BUSY_WORKERS, Action.HOLD)
        assert "every one of 3 replicas runs or holds tasks" in d.detail
        assert kube.replicas(DEP) == 3 and kube.deleted_pods == []
        assert not kube.requests_to("PATCH", "/scale$")
        (event,) = [e for e in kube.events() if e["reason"] == "ScaleDownWaiting"]
        assert event["involvedObject"]["name"] == DEP
        assert "waiting for an idle one" in event["message"]
        scaler.tick()  # still waiting: told once
        assert len([e for e in kube.events() if e["reason"] == "ScaleDownWaiting"]) == 1
        # The middle pod's task ends: it goes, the busy ones stay.
        source.snap = snapshot(pods, {pods[0]: 1, pods[2]: 1})
        (d,) = scaler.tick()
        assert (d.desired, d.reason) == (2, Reason.ABOVE_CAP)
    finally:
        backend.close()
    assert kube.replicas(DEP) == 2
    assert kube.deleted_pods == [pods[1]]
    registry = CollectorRegistry()
    registry.register(AutoscalerMetrics(scaler))
    assert registry.get_sample_value("celery_autoscaler_busy_stops_total", {"queue": "batch1"}) == 0
    held = {"queue": "batch1", "action": "hold", "reason": "busy_workers"}
    assert registry.get_sample_value("celery_autoscaler_decisions_total", held) == 2


def test_tasks_that_outlast_any_wait_are_counted_as_busy_stops(
    kube: FakeKube, tmp_path: Path
) -> None:
    """Every worker busy, and the batch's tasks may run longer than busy_wait_seconds: the
    step down does not wait, stops the pod running the fewest tasks (the lowest deletion
    cost), and celery_autoscaler_busy_stops_total counts the tasks on it."""
    pods = pod_names(kube)
    busy = {pods[0]: 3, pods[1]: 1, pods[2]: 2}
    cfg = config(kube, tmp_path, max_replicas=1, max_task_seconds=3600, busy_wait_seconds=60)
    source = FixedSource(snapshot(pods, busy))
    backend = KubernetesBackend(cfg)
    try:
        scaler = Autoscaler(cfg, source, backend)
        (d,) = scaler.tick()
        assert (d.desired, d.reason, d.action) == (2, Reason.ABOVE_CAP, Action.DOWN), d.detail
        assert "tasks may outlast any wait" in d.detail
    finally:
        backend.close()
    assert kube.deleted_pods == [pods[1]]
    registry = CollectorRegistry()
    registry.register(AutoscalerMetrics(scaler))
    assert registry.get_sample_value("celery_autoscaler_busy_stops_total", {"queue": "batch1"}) == 1
