"""The example workers' readiness probe, in a real Celery worker started as workers.yaml
starts it: the snippet at the top of that file makes the file appear when the worker
consumes (not before, a restarted container's leftover included) and go when it shuts
down on Kubernetes' SIGTERM (a cold shutdown: REMAP_SIGTERM=SIGQUIT), and probing costs no
broadcast over the broker (which `celery inspect ping`, the probe it replaces, does).
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import yaml

from tests.support.kustomize import K8S
from tests.support.servers.redis import RedisDatabase
from tests.support.waits import wait_for

pytestmark = pytest.mark.integration  # real servers, subprocesses or tools

WORKERS = K8S / "overlays" / "example" / "workers.yaml"
READY = "/tmp/celery-ready"  # what the snippet writes and the probe tests


def snippet() -> str:
    """The Python lines the header comment tells the site to add to its app."""
    lines = WORKERS.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if "probe reads a file" in line) + 1
    code = []
    for line in lines[start:]:
        if not line.startswith("#   "):
            break
        code.append(line[4:])
    assert code, "no snippet under the probe's comment in workers.yaml"
    return "\n".join(code) + "\n"


def worker_spec() -> tuple[list[str], list[str], dict[str, str]]:
    """(worker command, probe command, plain env) of the first example worker."""
    dep = next(d for d in yaml.safe_load_all(WORKERS.read_text()) if d)
    (c,) = dep["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e["value"] for e in c["env"] if "value" in e}
    return list(c["command"]), list(c["readinessProbe"]["exec"]["command"]), env


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    """A Celery app `app` with the snippet, the ready file moved into the test's tmp, and
    a stale one there, as a restarted container finds it in its emptyDir."""
    code = snippet()
    assert READY in code
    ready = tmp_path / "celery-ready"
    ready.write_text("left by the container before\n")
    (tmp_path / "app.py").write_text(
        "from celery import Celery\n\napp = Celery('app')\n\n" + code.replace(READY, str(ready))
    )
    return tmp_path


@pytest.fixture
def worker(app_dir: Path, redis_server: RedisDatabase) -> Iterator[subprocess.Popen[bytes]]:
    command, _, env = worker_spec()
    # One process instead of four: the probe does not depend on the pool's size.
    command[command.index("--concurrency") + 1] = "1"
    proc_env = dict(os.environ, **env, CELERY_BROKER_URL=redis_server.url, PYTHONPATH=".")
    log = (app_dir / "worker.log").open("wb")
    command[0] = str(Path(sys.executable).with_name("celery"))
    proc = subprocess.Popen(command, cwd=app_dir, env=proc_env, stdout=log, stderr=log)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(30)
        log.close()


def probe(app_dir: Path) -> int:
    _, command, _ = worker_spec()
    argv = [a.replace(READY, str(app_dir / "celery-ready")) for a in command]
    return subprocess.run(argv, timeout=10, check=False).returncode


def broadcasts(pubsub: redis.client.PubSub, seconds: float) -> list[bytes]:
    """The pidbox (broadcast) messages published within `seconds`."""
    out = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        msg = pubsub.get_message(ignore_subscribe_messages=True, timeout=left)
        if msg is not None:
            out.append(msg["channel"])
    return out


def test_the_probe_follows_a_real_worker_and_broadcasts_nothing(
    app_dir: Path, worker: subprocess.Popen[bytes], redis_server: RedisDatabase
) -> None:
    log = app_dir / "worker.log"
    ready = app_dir / "celery-ready"

    def consuming() -> bool:
        assert worker.poll() is None, log.read_text()
        return ready.exists()

    # Not ready on the leftover: it goes when the worker starts, comes back when it consumes.
    wait_for(lambda: consuming() and ready.read_text() == "", timeout=60,
             what="the worker_ready signal's file, the leftover gone")  # fmt: skip
    assert probe(app_dir) == 0

    # kombu's fanout over Redis is PUBLISH on "/<db>.<exchange>...": celery.pidbox here.
    pubsub = redis_server.client().pubsub()
    pubsub.psubscribe(f"/{redis_server.db}.*pidbox*")
    try:
        wait_for(lambda: pubsub.get_message(timeout=0.1), what="the subscription")
        for _ in range(5):
            assert probe(app_dir) == 0
        assert broadcasts(pubsub, 1.0) == []
        # The check can fail: the probe it replaces is one broadcast per run.
        ping = [str(Path(sys.executable).with_name("celery")), "-A", "app", "inspect", "ping",
                "--timeout", "1"]  # fmt: skip
        env = dict(os.environ, CELERY_BROKER_URL=redis_server.url, PYTHONPATH=".")
        subprocess.run(ping, cwd=app_dir, env=env, capture_output=True, timeout=60, check=False)
        assert broadcasts(pubsub, 1.0), "celery inspect ping published no broadcast"
    finally:
        pubsub.close()

    # Kubernetes' SIGTERM (REMAP_SIGTERM=SIGQUIT, as the Deployment sets): not ready.
    worker.send_signal(signal.SIGTERM)
    wait_for(lambda: not ready.exists(), timeout=60, what="the ready file removed on shutdown")
    assert probe(app_dir) != 0
    assert worker.wait(60) is not None, shlex.join(worker.args)  # type: ignore[arg-type]
