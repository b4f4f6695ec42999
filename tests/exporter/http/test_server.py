# ruff: noqa: E501 - the expected exposition text has long HELP lines
"""HTTP endpoints, exposition format and single-flight scrapes, over a real Redis."""

from __future__ import annotations

import gzip
import http.client
import json
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families as parse_text

from batchctl import __version__
from batchctl.config import parse_config
from batchctl.demo.tasks import enqueue, make_app
from exporter.broker.protocol import BrokerRead
from exporter.broker.redis.reader import RedisReader
from exporter.collect import InProcessSource
from exporter.http.exposition import render_snapshot
from exporter.http.server import ExporterApp
from exporter.http.textformat import LineCache
from exporter.snapshot import Snapshot
from tests.support.config import config_for
from tests.support.exporter import fixed_snapshot, serving
from tests.support.http import get
from tests.support.metrics import sample, samples
from tests.support.servers.redis import RedisServer
from tests.support.waits import wait_for

OPENMETRICS = "application/openmetrics-text; version=1.0.0"


@pytest.fixture
def served(
    redis_server: RedisServer, redis_db: redis.Redis
) -> Iterator[tuple[str, InProcessSource]]:
    with serving(config_for(redis_server.url)) as out:
        yield out


def test_metrics_endpoint(served: tuple[str, InProcessSource], redis_server: RedisServer) -> None:
    base, _ = served
    enqueue(make_app(redis_server.url), "batch1", 12, seconds=0, priorities=[0, 9], seed=3)
    code, ctype, body = get(base + "/metrics")
    assert code == 200 and ctype.startswith("text/plain")
    assert sample(body, "celery_queue_length", {"queue": "batch1"}) == 12
    assert sample(body, "celery_queue_length", {"queue": "batch0"}) == 0
    assert sample(body, "celery_broker_up") == 1
    assert sample(body, "celery_exporter_build_info", {"version": __version__}) == 1
    assert sample(body, "process_resident_memory_bytes") is not None
    # OpenMetrics when Prometheus asks for it: the snapshot's families and the registry's
    # in one document with one # EOF (the OpenMetrics parser rejects anything after it).
    code, ctype, body = get(base + "/metrics", "application/openmetrics-text; version=1.0.0")
    assert ctype.startswith("application/openmetrics-text") and body.rstrip().endswith("# EOF")
    names = {f.name for f in parse_openmetrics(body)}
    assert {"celery_queue_length", "process_resident_memory_bytes"} <= names


def test_other_endpoints(served: tuple[str, InProcessSource]) -> None:
    base, collector = served
    code, _, body = get(base + "/")
    assert code == 200 and "/metrics" in body and "/status" in body
    assert get(base + "/healthz")[0] == 200
    # Ready only after a first successful collection.
    assert get(base + "/readyz")[0] == 503
    collector.collect()
    assert get(base + "/readyz")[0] == 200
    code, ctype, body = get(base + "/api/v1/snapshot")
    assert code == 200 and ctype == "application/json"
    data = json.loads(body)
    assert data["broker_up"] is True
    assert [q["queue"] for q in data["queues"]] == ["batch0", "batch1"]
    code, _, body = get(base + "/status")
    assert code == 200 and 'data-queue="batch1"' in body
    assert get(base + "/nope")[0] == 404


def test_broker_down_still_answers(own_redis: RedisServer) -> None:
    with serving(config_for(own_redis.url)) as (base, _):
        own_redis.stop()
        code, _, body = get(base + "/metrics")
        assert code == 200
        assert sample(body, "celery_broker_up") == 0
        assert sample(body, "celery_exporter_last_scrape_error", {"backend": "redis"}) == 1
        assert samples(body, "celery_queue_length") == []  # unknown, so absent rather than 0
        code, _, body = get(base + "/status")
        assert code == 200 and 'id="broker-down"' in body


class GatedReader(RedisReader):
    """A real reader whose reads wait at a gate, to hold a collection in flight."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.calls = 0

    def read(
        self,
        queues: Sequence[str],
        now: float,
        claim_queues: Sequence[str] = (),
        clock: Callable[[], float] | None = None,
    ) -> BrokerRead:
        self.calls += 1
        self.entered.set()
        self.gate.wait(10)
        return super().read(queues, now, claim_queues, clock)


def test_concurrent_scrapes_share_one_collection(
    redis_server: RedisServer, redis_db: redis.Redis
) -> None:
    cfg = config_for(redis_server.url)
    reader = GatedReader(cfg.broker)
    collector = InProcessSource(cfg, reader)
    with ThreadPoolExecutor(8) as pool:
        first = pool.submit(collector.collect)
        assert reader.entered.wait(5)
        others = [pool.submit(collector.collect) for _ in range(7)]
        wait_for(lambda: collector.shared == 7, timeout=5, what="7 followers waiting")
        reader.gate.set()
        snaps = [first.result(10)] + [f.result(10) for f in others]
    # One read of Redis served all eight callers, with the very same snapshot.
    assert reader.calls == 1
    assert all(s is snaps[0] for s in snaps)


EXPECTED_EXPOSITION = """\
# HELP celery_queue_length Messages waiting in the queue, summed over all priority lists.
# TYPE celery_queue_length gauge
celery_queue_length{queue="batch0"} 0
celery_queue_length{queue="batch1"} 1000
# HELP celery_queue_priority_length Messages waiting in one priority list of the queue (only lists that exist).
# TYPE celery_queue_priority_length gauge
celery_queue_priority_length{queue="batch1",priority="0"} 700
celery_queue_priority_length{queue="batch1",priority="9"} 300
# HELP celery_queue_unacked Messages delivered to workers but not yet acknowledged (running or prefetched).
# TYPE celery_queue_unacked gauge
celery_queue_unacked{queue="batch0"} 0
celery_queue_unacked{queue="batch1"} 8
# HELP celery_queue_scheduled Messages of the queue a worker holds for an ETA still in the future (ETA and countdown tasks, Celery's headers.eta), part of celery_queue_unacked (batches always, other queues while they have any).
# TYPE celery_queue_scheduled gauge
celery_queue_scheduled{queue="batch0"} 0
celery_queue_scheduled{queue="batch1"} 0
# HELP celery_queue_unacked_stranded Messages in unacked delivered longer ago than the visibility timeout while no live worker consumes the queue: nothing restores them until a worker of the broker starts (batches always, other queues while they have any past the timeout).
# TYPE celery_queue_unacked_stranded gauge
celery_queue_unacked_stranded{queue="batch0"} 0
celery_queue_unacked_stranded{queue="batch1"} 0
# HELP celery_queue_oldest_message_age_seconds Age of the oldest waiting message (lower bound: since first seen, or published); 0 when empty; absent when the broker cannot date it.
# TYPE celery_queue_oldest_message_age_seconds gauge
celery_queue_oldest_message_age_seconds{queue="batch0"} 0
celery_queue_oldest_message_age_seconds{queue="batch1"} 12.5
# HELP celery_queue_memory_bytes Broker memory held by the queue (Redis: MEMORY USAGE of its lists, sampled; RabbitMQ: the queue's memory).
# TYPE celery_queue_memory_bytes gauge
celery_queue_memory_bytes{queue="batch0"} 0
celery_queue_memory_bytes{queue="batch1"} 1048576
# HELP celery_broker_up 1 if the last read of the broker succeeded.
# TYPE celery_broker_up gauge
celery_broker_up 1
# HELP celery_broker_memory_used_bytes Memory the broker uses (Redis used_memory; RabbitMQ mem_used of the node nearest its high watermark).
# TYPE celery_broker_memory_used_bytes gauge
celery_broker_memory_used_bytes 5000000
# HELP celery_broker_memory_max_bytes Memory the broker may use (Redis maxmemory, 0 means no limit; RabbitMQ the node's memory high watermark, mem_limit).
# TYPE celery_broker_memory_max_bytes gauge
celery_broker_memory_max_bytes 0
# HELP celery_deployment_replicas Replicas asked for by the Deployment that consumes the queue (spec.replicas).
# TYPE celery_deployment_replicas gauge
celery_deployment_replicas{queue="batch1",deployment="celery-batch1"} 3
# HELP celery_deployment_ready_replicas Ready replicas of the Deployment that consumes the queue (status.readyReplicas).
# TYPE celery_deployment_ready_replicas gauge
celery_deployment_ready_replicas{queue="batch1",deployment="celery-batch1"} 2
# HELP celery_kubernetes_up 1 if the Deployment cache is in sync with the Kubernetes API.
# TYPE celery_kubernetes_up gauge
celery_kubernetes_up 1
# HELP celery_exporter_scrape_duration_seconds Time the last collection took.
# TYPE celery_exporter_scrape_duration_seconds gauge
celery_exporter_scrape_duration_seconds 0.004
# HELP celery_exporter_queues_dropped Discovered queues the cardinality cap (broker.max_queues) hides right now.
# TYPE celery_exporter_queues_dropped gauge
celery_exporter_queues_dropped 2
# HELP celery_exporter_queues_skipped Queues or binding members left out because of what they are, by reason (escaped_name_taken, malformed_binding, name_too_long).
# TYPE celery_exporter_queues_skipped gauge
celery_exporter_queues_skipped{reason="escaped_name_taken"} 0
celery_exporter_queues_skipped{reason="malformed_binding"} 1
celery_exporter_queues_skipped{reason="name_too_long"} 0
# HELP celery_exporter_last_scrape_error 1 if the last collection had an error with the named backend.
# TYPE celery_exporter_last_scrape_error gauge
celery_exporter_last_scrape_error{backend="redis"} 0
celery_exporter_last_scrape_error{backend="kubernetes"} 0
# HELP celery_exporter_build_info Always 1; labelled with the batchctl version.
# TYPE celery_exporter_build_info gauge
celery_exporter_build_info{version="VERSION"} 1
"""


def test_full_exposition_text() -> None:
    text = render_snapshot(fixed_snapshot(), version=__version__, kubernetes_enabled=True)
    assert text == EXPECTED_EXPOSITION.replace("VERSION", __version__)


def test_openmetrics_exposition() -> None:
    text = render_snapshot(fixed_snapshot(), version="v", kubernetes_enabled=True, openmetrics=True)
    # The exporter's own families are all gauges: the same text, then # EOF.
    assert text == EXPECTED_EXPOSITION.replace("VERSION", "v") + "# EOF\n"


def test_label_values_are_escaped() -> None:
    snap = fixed_snapshot()
    odd = snap.queues[0]._replace(queue='we"ird\\q\nx')
    text = render_snapshot(
        Snapshot(taken_at=0, duration_seconds=0, broker_up=True, kubernetes_up=None, queues=(odd,)),
        version="v",
        kubernetes_enabled=False,
    )
    # The escaping itself is what this test is about, so the text is read as text too.
    assert 'celery_queue_length{queue="we\\"ird\\\\q\\nx"} 0' in text
    assert sample(text, "celery_queue_length", {"queue": 'we"ird\\q\nx'}) == 0


def test_line_cache_never_serves_a_stale_value() -> None:
    cache = LineCache()
    snap = fixed_snapshot()
    plain = render_snapshot(snap, version="v", kubernetes_enabled=True)
    kwargs = {"version": "v", "kubernetes_enabled": True, "cache": cache}
    assert render_snapshot(snap, **kwargs) == plain  # type: ignore[arg-type]
    assert render_snapshot(snap, **kwargs) == plain  # type: ignore[arg-type]  # from the cache
    changed = snap.queues[1]._replace(waiting=1001, oldest_age_seconds=13.0)
    snap2 = Snapshot(
        taken_at=0.0, duration_seconds=0.004, broker_up=True, kubernetes_up=True,
        queues=(snap.queues[0], changed), broker_memory_used_bytes=5000000,
        broker_memory_max_bytes=0, deployments=dict(snap.deployments),
    )  # fmt: skip
    text = render_snapshot(snap2, **kwargs)  # type: ignore[arg-type]
    assert text == render_snapshot(snap2, version="v", kubernetes_enabled=True)
    batch1 = {"queue": "batch1"}
    assert sample(text, "celery_queue_length", batch1) == 1001
    assert sample(text, "celery_queue_oldest_message_age_seconds", batch1) == 13


def test_an_ipv6_listen_address_is_served(redis_server: RedisServer) -> None:
    """`--listen [::1]:PORT` binds an IPv6 socket (an IPv6-only cluster's pod IP)."""
    import socket

    if not socket.has_ipv6:
        pytest.fail("this machine has no IPv6 loopback")
    cfg = parse_config({"broker": {"url": redis_server.url}, "kubernetes": {"enabled": False}})
    app = ExporterApp(cfg, InProcessSource(cfg, RedisReader(cfg.broker)))
    host, port = app.listen("[::1]:0")
    app.serve_in_thread()
    try:
        assert host == "::1"
        code, _, _ = get(f"http://[::1]:{port}/healthz")
        assert code == 200
    finally:
        app.shutdown()


def test_metrics_content_length_and_head(served: tuple[str, InProcessSource]) -> None:
    """The body is written in chunks: its Content-Length is what arrives, and HEAD
    says about the same length (a newer snapshot may differ in a value) with no body."""
    parts = urlsplit(served[0])
    for method in ("GET", "HEAD"):
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
        conn.request(method, "/metrics")
        resp = conn.getresponse()
        data = resp.read()
        length = int(resp.headers["Content-Length"])
        conn.close()
        if method == "GET":
            assert len(data) == length and data.endswith(b"\n")
            assert "celery_broker_up" in {f.name for f in parse_text(data.decode())}
            got = length
        else:
            assert data == b"" and abs(length - got) < 100


def _metrics(base: str, encoding: str | None, accept: str = "") -> tuple[dict[str, str], bytes]:
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    headers = {"Accept": accept} if accept else {}
    if encoding is not None:
        headers["Accept-Encoding"] = encoding
    conn.request("GET", "/metrics", headers=headers)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    assert resp.status == 200 and len(data) == int(resp.headers["Content-Length"])
    return dict(resp.headers.items()), data


def _series(text: str, parse: Any = parse_text) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    return {(s.name, tuple(sorted(s.labels.items()))) for f in parse(text) for s in f.samples}


def test_metrics_gzipped_for_a_scraper_that_accepts_it(
    redis_server: RedisServer, redis_db: redis.Redis
) -> None:
    """As Prometheus asks (`Accept-Encoding: gzip`): the same series, gzipped, in both
    formats; without the header, or with exporter.gzip off, plain text."""
    enqueue(make_app(redis_server.url), "batch1", 30, seconds=0, priorities=[0, 9], seed=4)
    with serving(config_for(redis_server.url)) as (base, _):
        plain_headers, plain = _metrics(base, None)
        assert "Content-Encoding" not in plain_headers
        for accept, parse in (("", parse_text), (OPENMETRICS, parse_openmetrics)):
            for asked in ("gzip", "deflate, gzip;q=1.0, br", "GZIP"):
                headers, data = _metrics(base, asked, accept)
                assert headers["Content-Encoding"] == "gzip", asked
                text = gzip.decompress(data).decode()
                assert _series(text, parse) == _series(
                    _metrics(base, None, accept)[1].decode(), parse
                )
                om = parse is parse_openmetrics
                assert (
                    sample(text, "celery_queue_length", {"queue": "batch1"}, openmetrics=om) == 30
                )
        headers, data = _metrics(base, "identity")
        assert "Content-Encoding" not in headers and data.startswith(b"# HELP")
        # Several times smaller, even for a handful of queues.
        assert len(_metrics(base, "gzip")[1]) * 3 < len(plain)
    off = config_for(redis_server.url).model_copy(
        update={
            "exporter": config_for(redis_server.url).exporter.model_copy(update={"gzip": False})
        }
    )
    with serving(off) as (base, _):
        headers, data = _metrics(base, "gzip")
        assert "Content-Encoding" not in headers and data.startswith(b"# HELP")
