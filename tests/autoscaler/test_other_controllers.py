"""Never fight another controller: against the fake API server, a batch whose Deployment
an HPA scales and one that a KEDA ScaledObject scales get no scale write and a hold that
names the controller (hold series, Event, /status line), while a third batch scales.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from autoscaler.backends.controllers import owners
from autoscaler.backends.kubernetes import KubernetesBackend
from autoscaler.loop import Autoscaler
from autoscaler.metrics import AutoscalerMetrics
from autoscaler.othercontrollers import hold_for_others
from autoscaler.policy import Action, Decision, Reason
from batchctl.claims.redis_store import RedisClaimStore
from batchctl.config import parse_config
from batchctl.decisions import SELF, DecisionRecord, Decisions
from batchctl.demo.tasks import enqueue, make_app
from exporter.runtime import build_source
from exporter.status.page import render_status
from tests.support.fakekube import FakeKube
from tests.support.servers.redis import EmbeddedRedis
from tests.support.waits import wait_for

pytestmark = pytest.mark.integration  # real servers, subprocesses or tools

NS = "court-listener"


@pytest.mark.parametrize("keda", [True, False], ids=["keda-installed", "no-keda-crd"])
def test_held_batches_name_the_other_controller(tmp_path: Path, keda: bool) -> None:
    with EmbeddedRedis() as server, FakeKube(NS) as kube:
        batches = [
            {"queue": f"batch{i}", "deployment": f"celery-batch{i}", "step_interval_seconds": 1}
            for i in range(3)
        ]
        cfg = parse_config(
            {
                "broker": {"url": server.url},
                "kubernetes": {"namespace": NS, "kubeconfig": str(kube.write_kubeconfig(tmp_path))},
                "batches": batches,
                "autoscaler": {"backend": "kubernetes", "leader_election": {"enabled": False}},
            },
            env={},
        )
        app, db = make_app(server.url), server.client()
        for b in cfg.batches:
            kube.add_deployment(b.deployment, replicas=0, ready=0)
            RedisClaimStore(db).claim(b.queue, "alice", "test", 3600, time.time())
            enqueue(app, b.queue, 3, seconds=0)
        kube.add_hpa("batch0-cpu", "celery-batch0")
        kube.add_hpa("elsewhere", "celery-other")  # another Deployment: not ours
        if keda:
            kube.add_scaled_object("batch1-redis", "celery-batch1")
        else:
            kube.add_hpa("batch1-cpu", "celery-batch1")
        source = build_source(cfg, background=False, events=False)
        backend = KubernetesBackend(cfg)
        try:
            wait_for(lambda: source.collect().kubernetes_up, what="the Deployments listed")
            scaler = Autoscaler(cfg, source, backend)
            decisions = {d.queue: d for d in scaler.tick()}
            scaler.tick()  # a second tick: no second Event, no write
        finally:
            backend.close()
            source.stop()
        writes = {r.path.rsplit("/", 2)[-2] for r in kube.requests_to("PATCH", r"/scale$")}
        assert writes == {"celery-batch2"}
        assert kube.replicas("celery-batch2") == 1
        assert kube.replicas("celery-batch0") == kube.replicas("celery-batch1") == 0
        assert decisions["batch2"].action == Action.UP
        for queue, who in (
            ("batch0", "HorizontalPodAutoscaler batch0-cpu"),
            (
                "batch1",
                "ScaledObject batch1-redis (KEDA)"
                if keda
                else "HorizontalPodAutoscaler batch1-cpu",
            ),
        ):
            d = decisions[queue]
            assert (d.action, d.reason, d.desired) == (Action.HOLD, Reason.OTHER_CONTROLLER, 0)
            assert who in d.detail and "keda-hpa" not in d.detail
        # The hold series names the reason; the Event is told once per Deployment.
        registry = CollectorRegistry()
        registry.register(AutoscalerMetrics(scaler))
        hold = "celery_autoscaler_hold"
        for queue in ("batch0", "batch1"):
            assert (
                registry.get_sample_value(hold, {"queue": queue, "reason": "other_controller"}) == 1
            )
        assert (
            registry.get_sample_value(hold, {"queue": "batch2", "reason": "other_controller"})
            is None
        )
        events = [e for e in kube.events() if e["reason"] == "OtherController"]
        assert sorted(e["involvedObject"]["name"] for e in events) == [
            "celery-batch0",
            "celery-batch1",
        ]
        assert all(e["type"] == "Warning" for e in events)
        # Listing ScaledObjects where KEDA is absent is a 404, read as "none".
        so_lists = kube.requests_to("GET", "/apis/keda.sh/v1alpha1/namespaces/.*/scaledobjects$")
        assert so_lists, "the ScaledObjects were never listed"


def test_status_page_says_which_controller_holds_a_batch() -> None:
    cfg = parse_config({}, env={})
    record = DecisionRecord(
        "batch1", 0, 0, "hold", "other_controller",
        "HorizontalPodAutoscaler x scales Deployment celery-batch1: hands off",
    )  # fmt: skip
    from exporter.snapshot import Snapshot

    page = render_status(
        Snapshot(time.time(), 0.01, broker_up=True, kubernetes_up=True),
        cfg.thresholds, 5, batches=cfg.batches,
        decisions=Decisions(SELF, time.time(), "me", (record,)),
    )  # fmt: skip
    assert 'id="other-controllers"' in page
    assert "HorizontalPodAutoscaler x scales Deployment celery-batch1" in page


def test_owners_and_holds_are_pure() -> None:
    hpa = {
        "metadata": {"name": "h"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "d1"}},
    }
    sts = {
        "metadata": {"name": "s"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "d2"}},
    }
    so = {"metadata": {"name": "k"}, "spec": {"scaleTargetRef": {"name": "d3"}}}
    keda_hpa = {
        "metadata": {
            "name": "keda-hpa-k",
            "ownerReferences": [{"kind": "ScaledObject", "name": "k"}],
        },
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "d3"}},
    }
    assert owners([hpa, sts, keda_hpa], [so]) == {
        "d1": ["HorizontalPodAutoscaler h"],
        "d3": ["ScaledObject k (KEDA)"],
    }
    up = Decision("q", 1, 0, Reason.FROM_ZERO, Action.UP, "")
    steady = Decision("q2", 2, 2, Reason.STEADY, Action.NONE, "")
    deps = {"q": "d1", "q2": "d9"}
    held, same = hold_for_others([up, steady], deps, {"d1": ["HorizontalPodAutoscaler h"]})
    assert (held.action, held.reason, held.desired) == (Action.HOLD, Reason.OTHER_CONTROLLER, 0)
    assert same == steady
    # Unknown (the list failed): what would change is held, what would not stands.
    unknown = hold_for_others([up, steady], deps, None, "ApiException: 403")
    assert unknown[0].reason == Reason.CONTROLLERS_UNKNOWN and "403" in unknown[0].detail
    assert unknown[1] == steady
