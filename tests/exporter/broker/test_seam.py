"""The broker seam: `open_reader` picks the reader by URL scheme, and the Redis reader
answers `work_left` (what `batchctl release` checks) from kombu's real layout."""

from __future__ import annotations

import json

import pytest
import redis

from batchctl.brokerparse import BrokerURLError
from batchctl.config import BrokerConfig, parse_config
from batchctl.demo.tasks import enqueue, make_app
from exporter.broker import open_reader
from exporter.broker.protocol import BrokerError, QueueWork
from exporter.broker.rabbitmq.reader import RabbitReader
from exporter.broker.redis.reader import RedisReader
from tests.support.servers.redis import RedisServer


def memory_usage_calls(r: redis.Redis) -> bool:
    # "cmdstat_memory", or "cmdstat_memory|usage" where Redis counts subcommands (7+).
    return any(k.startswith("cmdstat_memory") for k in r.info("commandstats"))


def broker_cfg(url: str) -> BrokerConfig:
    return parse_config({"broker": {"url": url}, "kubernetes": {"enabled": False}}).broker


@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:1/0",
        "rediss://127.0.0.1:1/0?ssl_cert_reqs=none",
        "redis+socket:///tmp/none.sock",
        "sentinel://127.0.0.1:1;sentinel://127.0.0.1:2",
    ],
)
def test_every_redis_scheme_gets_the_redis_reader(url: str) -> None:
    cfg = broker_cfg(url)
    if url.startswith("sentinel"):
        cfg = cfg.model_copy(update={"master_name": "mymaster"})
    reader = open_reader(cfg)
    try:
        assert isinstance(reader, RedisReader)
        assert reader.errors == (redis.RedisError,)
    finally:
        reader.close()


def test_a_broker_without_a_reader_is_a_clear_error() -> None:
    # The config refuses such a URL first; the seam still names it, without the password.
    cfg = broker_cfg("redis://127.0.0.1:1/0").model_copy(
        update={"url": "sqs://key:s3cret@sqs.example.com//"}
    )
    with pytest.raises(BrokerURLError) as e:
        open_reader(cfg)
    assert str(e.value).startswith("broker.url: no broker reader for sqs://;")
    assert "redis://" in str(e.value) and "amqp://" in str(e.value)
    assert "s3cret" not in str(e.value)


@pytest.mark.parametrize("url", ["amqp://u:pw@127.0.0.1:1//", "amqps://h/v", "pyamqp://h//"])
def test_every_amqp_scheme_gets_the_rabbitmq_reader(url: str) -> None:
    cfg = broker_cfg("redis://127.0.0.1:1/0").model_copy(update={"url": url})
    reader = open_reader(cfg)  # no I/O until a read
    try:
        assert isinstance(reader, RabbitReader)
        assert reader.errors == (BrokerError,)
    finally:
        reader.close()


def test_work_left_counts_every_priority_list_and_unacked(
    redis_server: RedisServer, redis_db: redis.Redis
) -> None:
    app = make_app(redis_server.url)
    enqueue(app, "batch1", 30, seconds=0, priorities=[0, 3, 9], seed=1)
    enqueue(app, "batch2", 4, seconds=0, priorities=[6])
    for i in range(3):  # in flight, as kombu keeps it: [message, exchange, routing_key]
        redis_db.hset("unacked", f"tag{i}", json.dumps([{"body": ""}, "batch1", "batch1"]))
    lengths = {k: redis_db.llen(k) for k in redis_db.scan_iter(_type="list")}
    assert sum(lengths.values()) == 34 and len(lengths) > 2  # several priority lists

    redis_db.config_resetstat()
    reader = open_reader(broker_cfg(redis_server.url))
    try:
        left = reader.work_left(["batch1", "batch2", "empty"])
    finally:
        reader.close()
    assert left == {
        "batch1": QueueWork(30, 3),
        "batch2": QueueWork(4, 0),
        "empty": QueueWork(0, 0),
    }
    # Read-only for kombu's keys, and no MEMORY USAGE (a scrape's read samples it).
    assert {k: redis_db.llen(k) for k in lengths} == lengths and redis_db.hlen("unacked") == 3
    assert not memory_usage_calls(redis_db)
    scrape = open_reader(broker_cfg(redis_server.url))
    try:
        scrape.read(["batch1"], 0.0)
    finally:
        scrape.close()
    assert memory_usage_calls(redis_db)
