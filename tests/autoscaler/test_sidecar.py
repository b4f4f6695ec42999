"""The autoscaler as a sidecar: its snapshot from the exporter over HTTP, its writes to the
fake API server (scale subresource, Events, the Lease), real Redis underneath."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
import yaml
from click.testing import CliRunner

from autoscaler.backends.kubernetes import KubernetesBackend
from autoscaler.loop import Autoscaler
from autoscaler.source import ExporterSource, SnapshotUnavailable
from batchctl.claims.redis_store import RedisClaimStore
from batchctl.cli import cli
from batchctl.config import Config, parse_config
from batchctl.demo.tasks import enqueue, make_app
from exporter.runtime import Running, start_exporter
from tests.support.fakekube import FakeKube
from tests.support.servers.redis import RedisServer, free_port
from tests.support.waits import wait_for

NS = "court-listener"
DEPLOYMENTS = [f"celery-batch{i}" for i in range(4)]


@dataclass
class Pod:
    kube: FakeKube
    exporter: Running
    config: dict[str, object]  # the raw config both containers read

    def cfg(self, **autoscaler: object) -> Config:
        raw = json.loads(json.dumps(self.config))
        raw["autoscaler"].update(autoscaler)  # type: ignore[union-attr]
        return parse_config(raw, env={})


@pytest.fixture
def pod(redis_server: RedisServer, tmp_path: Path) -> Iterator[Pod]:
    """An exporter watching the fake API server and reading the test's Redis database."""
    with FakeKube(NS) as kube:
        for name in DEPLOYMENTS:
            kube.add_deployment(name, replicas=0, ready=0)
        raw: dict[str, object] = {
            "broker": {"url": redis_server.url, "discover_queues": False},
            "kubernetes": {
                "namespace": NS,
                "kubeconfig": str(kube.write_kubeconfig(tmp_path)),
                "request_timeout_seconds": 1,
            },
            "batches": [
                {
                    "queue": f"batch{i}",
                    "deployment": f"celery-batch{i}",
                    "step_interval_seconds": 0.5,
                    "startup_grace_seconds": 1.0,
                }
                for i in range(4)
            ],
            "autoscaler": {
                "backend": "kubernetes",
                "interval_seconds": 0.5,
                "startup_timeout_seconds": 10,
                "leader_election": {
                    "lease_duration_seconds": 4,
                    "renew_deadline_seconds": 2.5,
                    "retry_period_seconds": 1,
                    "identity": "sidecar-a",
                },
            },
        }
        exporter = start_exporter(parse_config(raw, env={}), f"127.0.0.1:{free_port()}")
        raw["autoscaler"]["snapshot_url"] = exporter.url  # type: ignore[index]
        try:
            wait_for(
                lambda: ExporterSource(exporter.url, 2).collect().kubernetes_up,
                what="the exporter listed the Deployments",
            )
            yield Pod(kube, exporter, raw)
        finally:
            exporter.stop()


def work_for(redis_server: RedisServer, redis_db: redis.Redis, queue: str, n: int) -> None:
    enqueue(make_app(redis_server.url), queue, n, seconds=0)
    RedisClaimStore(redis_db).claim(queue, "bob", "reindex", 3600, time.time())


def test_once_scales_from_zero_and_tells_the_deployment(
    pod: Pod, redis_server: RedisServer, redis_db: redis.Redis, tmp_path: Path
) -> None:
    work_for(redis_server, redis_db, "batch1", 7)
    path = tmp_path / "sidecar.yml"
    path.write_text(yaml.safe_dump(pod.config))
    res = CliRunner().invoke(cli, ["autoscaler", "-c", str(path), "--once"])
    assert res.exit_code == 0, res.output
    table = {r.split()[0]: r.split() for r in res.stdout.splitlines()[1:]}
    assert table["batch1"][1:5] == ["0", "1", "up", "from_zero"]
    assert pod.kube.replicas("celery-batch1") == 1
    # kubectl describe deployment celery-batch1 shows why.
    (event,) = pod.kube.events()
    dep = pod.kube.deployment("celery-batch1")
    assert event["involvedObject"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "celery-batch1",
        "namespace": NS,
        "uid": dep["metadata"]["uid"],
    }
    assert event["reason"] == "ScaledUp" and event["type"] == "Normal"
    assert "0 -> 1 replicas: from_zero (7 waiting); claimed by bob" in event["message"]
    # The intent went to the Lease first, where the next leader finds it.
    lease = pod.kube.lease("batchctl-autoscaler")
    assert lease is not None
    state = json.loads(lease["metadata"]["annotations"]["batchctl.io/autoscaler-state"])
    assert state["batches"]["batch1"]["desired"] == 1
    assert state["batches"]["batch1"]["previous"] == 0


def test_pods_that_never_become_ready_are_not_stepped_past_one(
    pod: Pod, redis_server: RedisServer, redis_db: redis.Redis
) -> None:
    """The fake API server plays a cluster with no room: readyReplicas stays 0."""
    work_for(redis_server, redis_db, "batch2", 5000)
    cfg = pod.cfg(leader_election={"enabled": False})
    backend = KubernetesBackend(cfg, identity="sidecar-a")
    scaler = Autoscaler(cfg, ExporterSource(pod.exporter.url, 2), backend)
    try:
        assert scaler.tick()[2].reason == "from_zero"
        wait_for(lambda: _replicas_seen(pod, "batch2") == 1, what="the watch saw 1 replica")
        reasons = []
        deadline = time.monotonic() + 3  # step interval 0.5 s, startup grace 1 s
        while time.monotonic() < deadline:
            reasons.append(scaler.tick()[2])
            time.sleep(0.2)
        assert {d.reason for d in reasons} <= {"replicas_starting", "replicas_not_ready"}
        last = reasons[-1]
        assert last.reason == "replicas_not_ready"
        assert last.detail.startswith("1 of 1 replicas not ready for")
        assert pod.kube.replicas("celery-batch2") == 1
    finally:
        backend.close()


def _replicas_seen(pod: Pod, queue: str) -> int | None:
    q = ExporterSource(pod.exporter.url, 2).collect().queue(queue)
    return q.replicas if q is not None else None


def test_the_sidecar_holds_while_the_exporter_is_gone_and_resumes(
    pod: Pod, redis_server: RedisServer, redis_db: redis.Redis
) -> None:
    work_for(redis_server, redis_db, "batch3", 10)
    cfg = pod.cfg(leader_election={"enabled": False})
    backend = KubernetesBackend(cfg, identity="sidecar-a")
    source = ExporterSource(pod.exporter.url, 1)
    scaler = Autoscaler(cfg, source, backend)
    port = pod.exporter.port
    try:
        pod.exporter.app.shutdown()  # the exporter container restarts
        with pytest.raises(SnapshotUnavailable):
            source.collect()
        held = scaler.tick()
        assert {d.reason for d in held} == {"no_data"}
        assert all("exporter at http://127.0.0.1:" in d.detail for d in held)
        assert pod.kube.replicas("celery-batch3") == 0
        # Back on the same port: the next tick decides again.
        pod.exporter.app.listen(f"127.0.0.1:{port}")
        pod.exporter.app.serve_in_thread()
        wait_for(lambda: scaler.tick()[3].reason == "from_zero", what="resumed")
        assert pod.kube.replicas("celery-batch3") == 1
    finally:
        backend.close()


def test_the_sidecar_sends_the_exporters_basic_auth(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """With basic auth on the exporter's endpoints (--web.config.file), the sidecar reads
    /api/v1/snapshot with the user and password of its snapshot_url, the password from
    BATCHCTL_SNAPSHOT_PASSWORD when set; without them it holds and says 401."""
    import bcrypt

    from autoscaler.source import split_credentials
    from exporter.http.webconfig import load_web_config

    secret = "s3cret-sidecar-pw"
    hashed = bcrypt.hashpw(secret.encode(), bcrypt.gensalt(rounds=4)).decode()
    web = tmp_path / "web.yml"
    web.write_text(f"basic_auth_users:\n  sidecar: '{hashed}'\n")
    cfg = parse_config(
        {"broker": {"url": redis_server.url}, "kubernetes": {"enabled": False}}, env={}
    )
    exporter = start_exporter(cfg, f"127.0.0.1:{free_port()}", web=load_web_config(web))
    host = exporter.url.removeprefix("http://")
    try:
        with pytest.raises(SnapshotUnavailable, match="HTTP 401") as e:
            ExporterSource(exporter.url, 2, env={}).collect()
        assert secret not in str(e.value)
        snap = ExporterSource(f"http://sidecar:{secret}@{host}", 2, env={}).collect()
        assert snap.broker_up
        # The password from the environment (a Secret), the user from the URL.
        env = {"BATCHCTL_SNAPSHOT_PASSWORD": secret}
        assert ExporterSource(f"http://sidecar@{host}", 2, env=env).collect().broker_up
        with pytest.raises(SnapshotUnavailable) as e:
            ExporterSource(f"http://sidecar:wrong-password@{host}", 2, env={}).collect()
        assert "wrong-password" not in str(e.value) and "HTTP 401" in str(e.value)
        bare, headers = split_credentials(f"http://sidecar:{secret}@{host}", {})
        assert bare == exporter.url and secret not in bare and headers["Authorization"]
    finally:
        exporter.stop()
