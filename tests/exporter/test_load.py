"""Load: a burst of concurrent scrapes shares one collection and one rendered body.

Collections are counted by the commands Redis saw (INFO commandstats: one HKEYS of
`unacked` per collection), not by timing; latency is measured in the benchmark
(benchmarks/scrape_latency.py --concurrent 100).
"""

from __future__ import annotations

import json
import threading
import urllib.request

from batchctl.config import parse_config
from exporter.broker.redis.reader import RedisReader
from exporter.collect import InProcessSource
from exporter.http.server import ExporterApp
from tests.support.metrics import samples
from tests.support.servers.redis import EmbeddedRedis

QUEUES = 1000
SCRAPES = 100


def populate(server: EmbeddedRedis) -> None:
    client = server.client()
    pipe = client.pipeline(transaction=False)
    for i in range(QUEUES):
        q = f"q{i:04d}"
        pipe.sadd(f"_kombu.binding.{q}", f"{q}\x06\x16\x06\x16{q}")
        for step in (0, 3, 6, 9):
            key = q if step == 0 else f"{q}\x06\x16{step}"
            tag = f"{q}-{step}"
            pipe.lpush(key, json.dumps({"body": "", "properties": {"delivery_tag": tag}}))
    pipe.execute()
    client.close()


def collections(server: EmbeddedRedis) -> int:
    stats = server.client().info("commandstats")
    return int(stats.get("cmdstat_hkeys", {}).get("calls", 0))


def test_a_burst_of_scrapes_costs_one_collection(own_redis: EmbeddedRedis) -> None:
    populate(own_redis)
    cfg = parse_config({"broker": {"url": own_redis.url}, "kubernetes": {"enabled": False}}, env={})
    source = InProcessSource(cfg, RedisReader(cfg.broker))
    app = ExporterApp(cfg, source)
    _, port = app.listen("127.0.0.1:0")
    app.serve_in_thread()
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        before = collections(own_redis)  # the burst is the exporter's first work
        gate = threading.Barrier(SCRAPES)
        bodies: list[bytes] = []

        def scrape() -> None:
            gate.wait()
            with urllib.request.urlopen(url, timeout=60) as r:
                bodies.append(r.read())

        threads = [threading.Thread(target=scrape) for _ in range(SCRAPES)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert len(bodies) == SCRAPES
        assert collections(own_redis) - before <= 2
        assert app.bodies.renders <= 2  # one body per (snapshot, format)
        assert len(set(bodies)) <= 2
        assert len(samples(bodies[0].decode(), "celery_queue_length")) == QUEUES + 4
    finally:
        app.shutdown()
        source.stop()
