"""The sidecar's HTTP: /metrics, /healthz and /readyz, against a real loop and Redis."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
from pathlib import Path

import pytest

from autoscaler.server import ROUTES
from batchctl.decisions import LEASE, NONE, SELF, DecisionRecord, Decisions, encode_compact
from exporter.collect import InProcessSource
from exporter.snapshot import Snapshot
from tests.support.autoscaler import Served, make
from tests.support.http import get
from tests.support.metrics import sample
from tests.support.paths import BATCHCTL
from tests.support.servers.redis import EmbeddedRedis, RedisServer
from tests.support.waits import wait_for


class GatedSource(InProcessSource):
    """A real source whose collections wait at a gate: a loop stuck in a tick."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.gate = threading.Event()

    def collect(self) -> Snapshot:
        self.gate.wait(30)
        return super().collect()


def test_ready_and_healthy_once_the_loop_ticks(
    redis_server: RedisServer, serve: list[Served]
) -> None:
    s = Served(make(redis_server.url))
    serve.append(s)
    assert get(s.url + "/readyz")[0] == 503
    assert get(s.url + "/healthz")[0] == 503  # the loop has not started
    s.thread.start()
    wait_for(lambda: get(s.url + "/readyz")[0] == 200, what="/readyz 200")
    assert get(s.url + "/healthz")[:1] == (200,)
    code, ctype, body = get(s.url + "/metrics")
    assert code == 200 and ctype.startswith("text/plain")
    assert sample(body, "celery_autoscaler_desired_replicas", {"queue": "batch1"}) is not None
    code, ctype, body = get(s.url + "/metrics", "application/openmetrics-text; version=1.0.0")
    assert ctype.startswith("application/openmetrics-text") and body.rstrip().endswith("# EOF")
    for path in ROUTES:
        assert get(s.url + path)[0] == 200, path
    assert get(s.url + "/nope")[0] == 404


def test_ready_with_redis_down(own_redis: EmbeddedRedis, serve: list[Served]) -> None:
    url = own_redis.url
    own_redis.stop()
    s = Served(make(url))
    serve.append(s)
    s.thread.start()
    # A tick that holds for missing data is a tick: ready, and the exporter says why.
    wait_for(lambda: get(s.url + "/readyz")[0] == 200, what="/readyz 200")
    assert get(s.url + "/healthz")[0] == 200


def test_stuck_loop_is_unhealthy_until_it_ticks_again(
    redis_server: RedisServer, serve: list[Served]
) -> None:
    scaler = make(redis_server.url, GatedSource, stall_after=0.3)
    source = scaler.source
    assert isinstance(source, GatedSource)
    s = Served(scaler)
    serve.append(s)
    s.thread.start()
    # Before its thread runs, the loop is "not started" (also 503): under load a first
    # answer may say so. What matters is the stuck tick's own 503.
    _, _, body = wait_for(  # type: ignore[misc]
        lambda: (r := get(s.url + "/healthz"))[0] == 503 and "not started" not in r[2] and r,
        what="/healthz 503 for the stuck tick",
    )
    assert "no tick has ended" in body
    assert get(s.url + "/readyz")[0] == 503
    source.gate.set()
    wait_for(lambda: get(s.url + "/healthz")[0] == 200, what="healthy again")
    assert get(s.url + "/readyz")[0] == 200


@pytest.mark.integration
def test_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        cfg = tmp_path / "c.yml"
        cfg.write_text("kubernetes:\n  enabled: false\nautoscaler:\n  backend: dry-run\n")
        res = subprocess.run(
            [BATCHCTL, "autoscaler", "-c", str(cfg), "-l", f"127.0.0.1:{port}"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert res.returncode == 2, res.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in res.stderr
    assert "Traceback" not in res.stderr


def test_decisions_are_served_ours_or_the_leaders(
    redis_server: RedisServer, serve: list[Served]
) -> None:
    scaler = make(redis_server.url)
    s = Served(scaler)
    serve.append(s)
    # Before a first tick: none yet.
    code, ctype, body = get(s.url + "/api/v1/decisions")
    assert code == 200 and ctype == "application/json"
    assert Decisions.from_json(json.loads(body)) == Decisions(NONE)
    scaler.tick()
    doc = Decisions.from_json(json.loads(get(s.url + "/api/v1/decisions")[2]))
    assert doc.source == SELF and doc.at == scaler.last_tick_at
    assert {d.queue: d.reason for d in doc.decisions} == {"batch0": "steady", "batch1": "steady"}


class Standby:
    """A replica that does not lead and has read the leader's copy from the Lease."""

    identity = "b"

    def __init__(self, copy: str | None) -> None:
        self.copy = copy

    def is_leader(self) -> bool:
        return False

    def read_state(self) -> str | None:
        return None

    def write_state(self, text: str) -> None:
        raise AssertionError("a standby never writes")

    def leader_decisions(self) -> str | None:
        return self.copy


def test_a_standby_serves_the_leaders_decisions(redis_server: RedisServer) -> None:
    record = DecisionRecord("batch1", 2, 3, "up", "backlog", "<b>400</b> waiting")
    standby = make(redis_server.url, leadership=Standby(encode_compact(99.0, "a", [record])))
    assert standby.tick() == []
    doc = standby.decisions_view()
    assert (doc.source, doc.leader, doc.at, doc.decisions) == (LEASE, "a", 99.0, (record,))
    assert make(redis_server.url, leadership=Standby(None)).decisions_view() == Decisions(NONE)
    assert make(redis_server.url, leadership=Standby("garbage")).decisions_view().source == NONE
