"""Broken claim records and claim history in Redis never fail a page or a scrape, and
never make a claim that does not expire: the exporter, and the autoscaler that reads
the same records (in process, or from the exporter's JSON)."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families as parse_text

from autoscaler.loop import Autoscaler
from autoscaler.source import ExporterSource
from batchctl.claims.redis_store import RedisClaimStore
from batchctl.demo.tasks import enqueue, make_app
from batchctl.reasons import Reason
from exporter.broker.redis.reader import RedisReader
from exporter.collect import InProcessSource
from tests.support.autoscaler import RecordingBackend, dry_run_config, reasons, scaler_for
from tests.support.cli import strict
from tests.support.exporter import serving
from tests.support.http import get
from tests.support.servers.redis import RedisServer

HOUR = 3600.0


@pytest.fixture
def base(redis_server: RedisServer, redis_db: redis.Redis) -> Iterator[str]:
    with serving(dry_run_config(redis_server.url)) as (url, _):
        yield url


@pytest.mark.parametrize("bad", ["inf", "-inf", "nan"])
def test_pages_and_scrapes_over_non_finite_claims_and_broken_history(
    base: str, redis_db: redis.Redis, bad: str
) -> None:
    now = time.time()
    RedisClaimStore(redis_db).take("batch1", "y", "p", HOUR, now)  # an event, then broken ones
    redis_db.hset("batchctl:claim:batch0", mapping={"holder": "x", "since": now, "expires": bad})
    redis_db.hset(
        "batchctl:claim:batch1",
        mapping={"holder": "y", "since": bad, "expires": now + HOUR, "draining_since": bad,
                 "override_replicas": "2", "override_until": bad, "override_by": "y",
                 "override_since": bad},
    )  # fmt: skip
    redis_db.xadd("batchctl:history", {"kind": "scaled", "queue": "batch1", "at": now,
                                       "who": b"\xff\xfe", "detail": b"\xc3("})  # fmt: skip
    redis_db.xadd("batchctl:history", {"kind": "claimed", "queue": "batch1", "at": bad})

    code, _, page = get(base + "/status")
    assert code == 200, page
    assert "\ufffd\ufffd" in page and 'id="claim-history-skipped">1 unreadable' in page

    code, _, body = get(base + "/api/v1/snapshot")
    assert code == 200
    claims = strict(body)["claims"]
    assert claims["batch0"]["expires"] == 0.0 and claims["batch0"]["expired"] is True
    assert claims["batch1"]["draining_since"] is None and claims["batch1"]["override"] is None

    code, _, text = get(base + "/metrics")
    assert code == 200
    expiry = {
        s.labels["queue"]: s.value
        for f in parse_text(text)
        for s in f.samples
        if s.name == "celery_batch_claim_expiry_timestamp_seconds"
    }
    assert expiry["batch0"] == 0.0  # long expired; never NaN, never +Inf


@pytest.mark.parametrize("bad", ["inf", "nan"])
def test_the_autoscaler_treats_a_non_finite_expiry_as_expired(
    redis_server: RedisServer, redis_db: redis.Redis, bad: str
) -> None:
    enqueue(make_app(redis_server.url), "batch1", 20, seconds=0)
    redis_db.hset(
        "batchctl:claim:batch1", mapping={"holder": "x", "since": time.time(), "expires": bad}
    )
    backend = RecordingBackend({"batch0": 0, "batch1": 0})
    a = scaler_for(dry_run_config(redis_server.url), redis_db, backend)
    a.tick()
    assert backend.calls == [] and reasons(a)["batch1"] == Reason.CLAIM_EXPIRED


@pytest.mark.parametrize("bad", ["Infinity", "NaN"])
def test_the_sidecar_treats_infinity_in_the_exporters_json_as_expired(
    redis_server: RedisServer, redis_db: redis.Redis, bad: str
) -> None:
    """An exporter of another version could still send Python's Infinity or NaN."""
    enqueue(make_app(redis_server.url), "batch1", 20, seconds=0)
    RedisClaimStore(redis_db).claim("batch1", "alice", "reindex", HOUR, time.time())
    cfg = dry_run_config(redis_server.url)
    doc = InProcessSource(cfg, RedisReader(cfg.broker)).collect().to_json()
    body = json.dumps(doc).replace(f'"expires": {doc["claims"]["batch1"]["expires"]}',  # type: ignore[index]
                                   f'"expires": {bad}')  # fmt: skip
    assert bad in body

    def opener(url: str, timeout: float) -> Any:
        return io.BytesIO(body.encode())

    backend = RecordingBackend({"batch0": 0, "batch1": 0})
    a = Autoscaler(cfg, ExporterSource("http://exporter", 1, opener=opener), backend)  # type: ignore[arg-type]
    a.tick()
    assert backend.calls == [] and reasons(a)["batch1"] == Reason.CLAIM_EXPIRED
