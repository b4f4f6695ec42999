"""`batchctl scale`: the holder's manual replicas through the scale subresource of the fake
API server, refused for anyone else, and the autoscaler's `manual_override` afterwards."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
import yaml
from click.testing import CliRunner

from autoscaler.backends.dryrun import DryRunBackend
from autoscaler.loop import Autoscaler
from autoscaler.source import ExporterSource
from batchctl.claims.redis_store import RedisClaimStore
from batchctl.cli import cli
from batchctl.config import parse_config
from batchctl.demo.tasks import enqueue, make_app
from exporter.runtime import Running, start_exporter
from tests.support.fakekube import FakeKube
from tests.support.servers.redis import RedisServer, free_port
from tests.support.waits import wait_for

NS = "court-listener"


@dataclass
class Cluster:
    kube: FakeKube
    exporter: Running
    raw: dict[str, object]
    path: Path  # the config file both the CLI and the autoscaler read


@pytest.fixture
def cluster(redis_server: RedisServer, tmp_path: Path) -> Iterator[Cluster]:
    """The batch Deployments on the fake API server and an exporter watching them."""
    with FakeKube(NS) as kube:
        for i in range(4):
            kube.add_deployment(f"celery-batch{i}", replicas=0, ready=0)
        raw: dict[str, object] = {
            "broker": {"url": redis_server.url, "discover_queues": False},
            "kubernetes": {
                "namespace": NS,
                "kubeconfig": str(kube.write_kubeconfig(tmp_path)),
                "request_timeout_seconds": 1,
            },
            "batches": [
                {"queue": f"batch{i}", "deployment": f"celery-batch{i}", "max_replicas": 5}
                for i in range(4)
            ],
            "autoscaler": {
                "backend": "kubernetes",
                "startup_timeout_seconds": 10,
                "leader_election": {"enabled": False},
            },
        }
        exporter = start_exporter(parse_config(raw, env={}), f"127.0.0.1:{free_port()}")
        raw["autoscaler"]["snapshot_url"] = exporter.url  # type: ignore[index]
        path = tmp_path / "cluster.yml"
        path.write_text(yaml.safe_dump(raw))
        try:
            wait_for(
                lambda: ExporterSource(exporter.url, 2).collect().kubernetes_up,
                what="the exporter listed the Deployments",
            )
            yield Cluster(kube, exporter, raw, path)
        finally:
            exporter.stop()


def scale_patches(kube: FakeKube) -> list[object]:
    return [r.json() for r in kube.requests_to("PATCH", r"/deployments/celery-batch1/scale$")]


def test_scale_by_the_holder_then_manual_override_for_its_duration(  # type: ignore[no-untyped-def]
    run, cluster: Cluster, redis_server: RedisServer, redis_db: redis.Redis
) -> None:
    c = str(cluster.path)
    assert run("claim", "batch1", "--purpose", "reindex", "-c", c).exit_code == 0
    enqueue(make_app(redis_server.url), "batch1", 50, seconds=0)

    # Anyone else: refused, nothing patched, nothing recorded.
    r = run("scale", "batch1", "3", "-c", c, env={"USER": "bob"})
    assert r.exit_code == 1 and "batch1 is claimed by alice" in r.stderr, r.output
    r = run("scale", "batch1", "1", "--force", "-c", c, "-o", "json", env={"USER": "bob"})
    assert r.exit_code == 2 and "--reason" in json.loads(r.stdout)["error"]
    # Outside the caps: refused.
    r = run("scale", "batch1", "6", "-c", c)
    assert r.exit_code == 2 and "batch1 takes 0 to 5 replicas" in r.stderr
    assert scale_patches(cluster.kube) == [] and cluster.kube.replicas("celery-batch1") == 0

    # The holder: the scale subresource is patched, the override recorded.
    r = run("scale", "batch1", "3", "--for", "30m", "--reason", "catch up", "-c", c, "-o", "json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert (doc["event"], doc["replicas"], doc["patched"], doc["backend"]) == (
        "scaled",
        3,
        True,
        "kubernetes",
    )
    assert scale_patches(cluster.kube) == [{"spec": {"replicas": 3}}]
    assert cluster.kube.replicas("celery-batch1") == 3
    # `kubectl describe deployment celery-batch1` tells it, like the autoscaler's own.
    (event,) = [e for e in cluster.kube.events() if e["reason"] == "ManualScale"]
    assert event["involvedObject"]["name"] == "celery-batch1"
    assert (
        event["involvedObject"]["uid"]
        == cluster.kube.deployment("celery-batch1")["metadata"]["uid"]
    )
    assert "batchctl scale: 3 replicas by alice for 30m" in event["message"]
    claim = RedisClaimStore(redis_db).get("batch1")
    assert claim is not None and claim.override is not None
    assert (claim.override.replicas, claim.override.by) == (3, "alice")
    assert claim.override.until - time.time() == pytest.approx(1800, abs=30)

    # The autoscaler (the sidecar, reading the exporter) holds it, naming the holder.
    wait_for(
        lambda: ExporterSource(cluster.exporter.url, 2).collect().queue("batch1").replicas == 3,
        what="the exporter saw 3 replicas",
    )
    r = run("autoscaler", "--once", "-c", c, "-o", "json")
    assert r.exit_code == 0, r.output
    decisions = {d["queue"]: d for d in json.loads(r.stdout)["decisions"]}
    b1 = decisions["batch1"]
    assert (b1["current"], b1["desired"], b1["reason"]) == (3, 3, "manual_override")
    assert "set by alice (batchctl scale)" in b1["detail"] and "catch up" in b1["detail"]
    assert scale_patches(cluster.kube) == [{"spec": {"replicas": 3}}]  # nobody else wrote

    # Once --for has passed the policy decides again: 50 waiting, claimed -> its own rules.
    cfg = parse_config(cluster.raw | {"autoscaler": {"stale_after_seconds": 7200}}, env={})
    later = Autoscaler(
        cfg,
        ExporterSource(cluster.exporter.url, 2),
        DryRunBackend(),
        clock=lambda: time.time() + 1801,
    )
    during = Autoscaler(cfg, ExporterSource(cluster.exporter.url, 2), DryRunBackend())
    assert {d.queue: d.reason for d in during.tick()}["batch1"] == "manual_override"
    assert {d.queue: d.reason for d in later.tick()}["batch1"] != "manual_override"

    kinds = [e.kind for e in RedisClaimStore(redis_db).events("batch1")]
    assert kinds == ["claimed", "scaled"]


def test_forced_scale_and_unclaimed_or_missing_deployment(  # type: ignore[no-untyped-def]
    run, cluster: Cluster, redis_db: redis.Redis
) -> None:
    c = str(cluster.path)
    r = run("scale", "batch2", "1", "-c", c)
    assert r.exit_code == 1 and "nobody holds batch2: claim it first" in r.stderr
    assert run("claim", "batch2", "--purpose", "p", "-c", c).exit_code == 0
    r = run("scale", "batch2", "2", "--force", "--reason", "db on fire", "-c", c,
            env={"USER": "bob"})  # fmt: skip
    assert r.exit_code == 0, r.output
    assert cluster.kube.replicas("celery-batch2") == 2
    (e,) = RedisClaimStore(redis_db).events("batch2")[1:]
    assert (e.kind, e.who, e.holder) == ("forced", "bob", "alice")
    assert "db on fire" in e.detail

    cluster.kube.delete_deployment("celery-batch3")
    assert run("claim", "batch3", "--purpose", "p", "-c", c).exit_code == 0
    r = run("scale", "batch3", "1", "-c", c, "-o", "json")
    assert r.exit_code == 2 and "not found" in json.loads(r.stdout)["error"]
    c3 = RedisClaimStore(redis_db).get("batch3")
    assert c3 is not None and c3.override is None  # a failed patch records nothing

    cluster.kube.down()
    r = run("scale", "batch2", "1", "-c", c, "-o", "json")
    assert r.exit_code == 3 and json.loads(r.stdout)["error"].startswith("cannot scale batch2")


def test_scale_with_the_local_and_dry_run_backends_is_a_request(  # type: ignore[no-untyped-def]
    run, tmp_path: Path, redis_db: redis.Redis
) -> None:
    path = tmp_path / "dry.yml"
    path.write_text("kubernetes: {enabled: false}\nautoscaler: {backend: dry-run}\n")
    assert run("claim", "batch0", "--purpose", "p", "-c", str(path)).exit_code == 0
    r = run("scale", "batch0", "2", "-c", str(path))
    assert r.exit_code == 0 and "the dry-run backend changes nothing" in r.stdout, r.output
    c = RedisClaimStore(redis_db).get("batch0")
    assert c is not None and c.override is not None and c.override.replicas == 2


def test_a_claim_that_changes_during_the_patch_is_said_plainly(
    cluster: Cluster, redis_db: redis.Redis
) -> None:
    """The holder's patch is under way when someone force-releases the claim: the
    Deployment is scaled, no override is recorded, and the error says both."""
    from autoscaler.manual import manual_scale
    from batchctl.claims import Refused
    from batchctl.claims.service import store_for

    cfg = parse_config(cluster.raw, env={})
    store = RedisClaimStore(redis_db)
    store.claim("batch1", "alice", "reindex", 3600, time.time())
    gate = cluster.kube.hold(method="PATCH", path=r"/deployments/celery-batch1/scale$")
    errors: list[Exception] = []

    def scale() -> None:
        own = store_for(cfg)
        try:
            manual_scale(cfg, own, "batch1", 2, 600, "alice", time.time())
        except Exception as e:
            errors.append(e)
        finally:
            own.close()

    t = threading.Thread(target=scale)
    t.start()
    wait_for(lambda: gate.held == 1, what="the patch under way")
    store.release("batch1", "bob", force=True, reason="taking over")
    gate.release()
    t.join(timeout=10)
    (e,) = errors
    assert isinstance(e, Refused)
    assert "batch1 was scaled to 2 replicas, but the claim changed meanwhile" in str(e)
    assert cluster.kube.replicas("celery-batch1") == 2 and store.get("batch1") is None
    assert [x.kind for x in store.events("batch1")] == ["claimed", "forced"]


def test_scale_with_the_kubernetes_backend_but_no_kubernetes_names_the_conflict(  # type: ignore[no-untyped-def]
    run, redis_db: redis.Redis, tmp_path: Path
) -> None:
    path = tmp_path / "c.yml"
    path.write_text("kubernetes: {enabled: false}\nautoscaler: {backend: kubernetes}\n")
    assert run("claim", "batch0", "--purpose", "p", "-c", str(path)).exit_code == 0
    r = run("scale", "batch0", "2", "-c", str(path))
    assert r.exit_code == 2, r.output
    assert "autoscaler.backend: kubernetes needs kubernetes.enabled: true" in r.stderr
    assert "kubeconfig" not in r.stderr
    store = RedisClaimStore(redis_db)
    claim = store.get("batch0")
    assert claim is not None and claim.override is None  # nothing recorded


@pytest.mark.parametrize("typed", ["-1", "-1.5"])
def test_a_negative_n_is_a_bad_value_not_an_unknown_option(typed: str) -> None:
    result = CliRunner().invoke(cli, ["scale", "batch1", typed])
    assert result.exit_code == 2
    assert f"Invalid value for 'N': {typed}: replicas are a whole number, 0 or more." in (
        result.output
    )
    # A mistyped option is still click's own error, with its suggestions.
    result = CliRunner().invoke(cli, ["scale", "batch1", "2", "--fro", "1h"])
    assert result.exit_code == 2
    assert "No such option '--fro'" in result.output
