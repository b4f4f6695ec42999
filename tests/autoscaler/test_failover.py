"""Two autoscaler processes against one fake API server: one writer at a time, and a
failover mid-ramp that neither jolts the pace nor mistakes the last steps for a manual
change."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import yaml

from batchctl.claims.redis_store import RedisClaimStore
from batchctl.config import parse_config
from batchctl.demo.tasks import enqueue, make_app
from exporter.runtime import start_exporter
from tests.support.fakekube import FakeKube, Request
from tests.support.metrics import sample, samples
from tests.support.paths import BATCHCTL
from tests.support.servers.redis import RedisServer, free_port
from tests.support.waits import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

NS = "court-listener"
STEP = 2.0  # step_interval_seconds of batch1
LEASE = {"lease_duration_seconds": 4, "renew_deadline_seconds": 2.5, "retry_period_seconds": 1}


class Proc:
    def __init__(self, name: str, args: list[str], env: dict[str, str], log: Path) -> None:
        self.name = name
        self.log = log
        self.port = int(args[args.index("--listen") + 1].rsplit(":", 1)[1])
        self.popen = subprocess.Popen(
            args, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT
        )

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=2) as r:
            return str(r.read().decode())

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait(10)

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def pair(
    redis_server: RedisServer, redis_db: redis.Redis, tmp_path: Path
) -> Iterator[tuple[FakeKube, dict[str, Proc]]]:
    with FakeKube(NS, auto_ready=True) as kube:
        for i in range(4):
            kube.add_deployment(f"celery-batch{i}", replicas=0, ready=0)
        raw = {
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
                    "max_replicas": 8,
                    "step_interval_seconds": STEP,
                }
                for i in range(4)
            ],
            "autoscaler": {
                "backend": "kubernetes",
                "interval_seconds": 0.5,
                "leader_election": LEASE,
            },
        }
        # One exporter serves both sidecars (in a cluster each pod has its own).
        exporter = start_exporter(parse_config(raw, env={}), f"127.0.0.1:{free_port()}")
        raw["autoscaler"]["snapshot_url"] = exporter.url  # type: ignore[index]
        path = tmp_path / "batchctl.yml"
        path.write_text(yaml.safe_dump(raw))
        procs: dict[str, Proc] = {}
        try:
            for name in ("a", "b"):
                env = {**os.environ, "POD_NAME": f"autoscaler-{name}"}
                args = [str(BATCHCTL), "--log-format=json", "autoscaler", "-c", str(path)]
                args += ["--listen", f"127.0.0.1:{free_port()}"]
                procs[name] = Proc(name, args, env, tmp_path / f"{name}.log")
            yield kube, procs
        finally:
            for p in procs.values():
                p.stop()
            exporter.stop()


def _writer(r: Request) -> str:
    # "batchctl/<version> (autoscaler; autoscaler-a)"
    return r.headers.get("user-agent", "").rsplit("; ", 1)[-1].rstrip(")")


def _scale_writes(kube: FakeKube) -> list[tuple[float, str, int]]:
    writes = kube.requests_to("PATCH", r"/deployments/celery-batch1/scale$")
    return [(r.at, _writer(r), r.json()["spec"]["replicas"]) for r in writes]


def _logs(procs: dict[str, Proc]) -> str:
    return "\n".join(f"--- {p.name}\n{p.log.read_text()[-3000:]}" for p in procs.values())


def test_one_writer_and_a_calm_failover_mid_ramp(
    pair: tuple[FakeKube, dict[str, Proc]], redis_server: RedisServer, redis_db: redis.Redis
) -> None:
    kube, procs = pair
    # Work nobody consumes: the backlog asks for one more replica every step interval.
    enqueue(make_app(redis_server.url), "batch1", 3000, seconds=0)
    RedisClaimStore(redis_db).claim("batch1", "bob", "reindex", 3600, time.time())

    def holder() -> str | None:
        lease = kube.lease("batchctl-autoscaler")
        return lease["spec"].get("holderIdentity") if lease else None

    try:
        wait_for(lambda: kube.replicas("celery-batch1") >= 3, timeout=30, what="ramp to 3")
    except AssertionError as e:
        raise AssertionError(f"{e}\n{_logs(procs)}") from None
    leader_id = holder()
    assert leader_id in ("autoscaler-a", "autoscaler-b")
    leader = procs[leader_id[-1]]
    standby = procs["b" if leader.name == "a" else "a"]
    assert sample(leader.metrics(), "celery_autoscaler_is_leader") == 1
    assert sample(standby.metrics(), "celery_autoscaler_is_leader") == 0

    killed_at = time.monotonic()
    leader.kill()
    try:
        wait_for(lambda: kube.replicas("celery-batch1") >= 6, timeout=40, what="ramp to 6")
    except AssertionError as e:
        raise AssertionError(f"{e}\n{_logs(procs)}") from None

    writes = _scale_writes(kube)
    before = [w for w in writes if w[0] < killed_at]
    after = [w for w in writes if w[0] >= killed_at]
    # Exactly one writer at any time: the leader until it died, then the other.
    assert before and {w[1] for w in before} == {leader_id}
    assert after and {w[1] for w in after} == {f"autoscaler-{standby.name}"}
    # The other took over within the lease duration (plus a retry and a tick)...
    first = after[0][0] - killed_at
    assert first <= LEASE["lease_duration_seconds"] + 1 + 0.5 + STEP, first
    # ... kept the ramp's pace across the handover: one step per interval, never faster ...
    times = [w[0] for w in writes]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= STEP - 0.3, gaps
    assert [w[2] for w in writes] == list(range(1, len(writes) + 1))
    # ... and did not take the previous leader's steps for a manual change.
    metrics = standby.metrics()
    assert [s for s in samples(metrics) if s.labels.get("reason") == "manual_override"] == []
    assert sample(metrics, "celery_autoscaler_is_leader") == 1

    # Every step is an Event on the Deployment (the killed leader may have died between
    # its last write and that write's Event: best effort, after the write).
    def events() -> list[dict[str, object]]:
        return [e for e in kube.events() if e["involvedObject"]["name"] == "celery-batch1"]

    wait_for(
        lambda: sum(e["reportingInstance"] != leader_id for e in events()) == len(after),
        what="the survivor's events",
    )
    told = sum(e["reportingInstance"] == leader_id for e in events())
    assert len(before) - 1 <= told <= len(before)
    assert json.loads(
        kube.lease("batchctl-autoscaler")["metadata"]["annotations"][  # type: ignore[index]
            "batchctl.io/autoscaler-state"
        ]
    )["batches"]["batch1"]["desired"] == kube.replicas("celery-batch1")
