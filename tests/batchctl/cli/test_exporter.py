"""`batchctl exporter` as users run it: a real process, a real Redis, a fake API server."""

from __future__ import annotations

import os
import signal
import subprocess
import urllib.request
from pathlib import Path

import pytest
import redis

from batchctl.demo.tasks import enqueue, make_app
from tests.support.fakekube import FakeKube
from tests.support.metrics import sample
from tests.support.paths import BATCHCTL
from tests.support.servers.redis import RedisServer, free_port
from tests.support.waits import wait_for

pytestmark = pytest.mark.integration


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.read().decode()


def test_exporter_process_with_kubernetes(
    redis_server: RedisServer, redis_db: redis.Redis, tmp_path: Path
) -> None:
    with FakeKube(namespace="court-listener") as kube:
        kube.add_deployment("celery-batch0", replicas=0, ready=0)
        kube.add_deployment("celery-batch1", replicas=3, ready=2)
        kubeconfig = kube.write_kubeconfig(tmp_path)
        cfg = tmp_path / "batchctl.yml"
        cfg.write_text(
            f"broker:\n  url: redis://:{'s3cr3t'}@127.0.0.1:{redis_server.port}/{redis_server.db}\n"
            f"kubernetes:\n  namespace: court-listener\n  kubeconfig: {kubeconfig}\n"
            "batches:\n"
            "  - {queue: batch0, deployment: celery-batch0}\n"
            "  - {queue: batch1, deployment: celery-batch1}\n"
        )
        # The test server has no password: point the exporter at it through the env
        # override, and check that the password in the file never shows up anywhere.
        env = {**os.environ, "BATCHCTL_BROKER_URL": redis_server.url}
        port = free_port()
        log = tmp_path / "batchctl.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [BATCHCTL, "--log-format", "json", "exporter", "-c", str(cfg),
                 "-l", f"127.0.0.1:{port}"],
                stdout=out, stderr=subprocess.STDOUT, env=env,
            )  # fmt: skip
            try:
                base = f"http://127.0.0.1:{port}"
                wait_for(lambda: fetch(base + "/healthz"), timeout=20, what="exporter up")
                enqueue(make_app(redis_server.url), "batch1", 9, seconds=0)
                # A scrape within exporter.snapshot_reuse_seconds of the last collection is
                # answered from it: wait for one that has both the queue and the cluster.
                body = wait_for(
                    lambda: (
                        (b := fetch(base + "/metrics"))
                        and sample(b, "celery_kubernetes_up") == 1
                        and sample(b, "celery_queue_length", {"queue": "batch1"}) == 9
                        and b
                    ),
                    timeout=10,
                    what="kubernetes in sync and the 9 messages seen",
                )
                assert isinstance(body, str)
                dep = {"queue": "batch1", "deployment": "celery-batch1"}
                assert sample(body, "celery_deployment_replicas", dep) == 3
                assert sample(body, "celery_deployment_ready_replicas", dep) == 2
                # The watch delivers a change without a restart.
                kube.set_replicas("celery-batch1", spec=0, ready=0)
                wait_for(
                    lambda: (
                        sample(fetch(base + "/metrics"), "celery_deployment_replicas", dep) == 0
                    ),
                    timeout=10,
                    what="watch update",
                )
                assert fetch(base + "/readyz").startswith("ready")
            finally:
                proc.send_signal(signal.SIGTERM)
                assert proc.wait(timeout=20) == 0
        text = log.read_text()
        assert '"event": "exporter listening"' in text
        assert "s3cr3t" not in text and kube.token not in text


def test_kubernetes_misconfigured_is_a_clear_error(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yml"
    cfg.write_text(f"kubernetes:\n  kubeconfig: {tmp_path / 'nope'}\n")
    env = {k: v for k, v in os.environ.items() if k != "KUBERNETES_SERVICE_HOST"}
    res = subprocess.run(
        [BATCHCTL, "exporter", "-c", str(cfg), "-l", f"127.0.0.1:{free_port()}"],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert res.returncode == 2, res.stderr
    assert "kubernetes" in res.stderr and "kubernetes.enabled: false" in res.stderr
    assert "Traceback" not in res.stderr


def test_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        cfg = tmp_path / "c.yml"
        cfg.write_text("kubernetes:\n  enabled: false\n")
        res = subprocess.run(
            [BATCHCTL, "exporter", "-c", str(cfg), "-l", f"127.0.0.1:{port}"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert res.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in res.stderr
    assert "Traceback" not in res.stderr
