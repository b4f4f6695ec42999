"""A queue before RabbitMQ's first statistics of it, against a real node: unknown, never 0.

RabbitMQ lists a queue as soon as it is declared, and publishes its figures only at the
next `collect_statistics_interval` (5 s by default). This node publishes them every ten
minutes, so that a queue declared here stays in that state for the whole test; the test
checks that the management API itself still shows no figures after batchctl's reads, so
what batchctl read is that state. The same listing's shapes, and the queue once its
figures come: test_unpublished.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from autoscaler.loop import Autoscaler
from autoscaler.policy import Reason
from batchctl.cli import cli
from batchctl.demo.tasks import enqueue, make_app
from exporter.broker import open_reader
from exporter.broker.protocol import BrokerUnavailable
from tests.support.autoscaler import FixedSource, RecordingBackend
from tests.support.config import config_for
from tests.support.exporter import collect_once
from tests.support.isolation import starts_servers
from tests.support.metrics import sample
from tests.support.servers.rabbitmq import RabbitNode, RabbitVhost, drop_vhost, new_vhost

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
@starts_servers
def unpublished(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RabbitVhost]:
    """A vhost on a node of its own whose statistics come every ten minutes, with
    batch1 declared (3 messages published) and batch2 not declared."""
    conf = "collect_statistics_interval = 600000\n"  # after the node's own 1000: it wins
    with RabbitNode(tmp_path_factory.mktemp("rabbitmq-slow-statistics"), conf) as node:
        v = new_vhost(node)
        try:
            enqueue(make_app(v.url), "batch1", 3, seconds=0, priorities=[0])
            assert_no_figures(v)
            yield v
        finally:
            drop_vhost(v)


def assert_no_figures(v: RabbitVhost) -> None:
    item = v.queue("batch1")
    assert item["name"] == "batch1"
    assert item.get("messages_ready") is None and item.get("messages_unacknowledged") is None


def test_no_series_and_the_autoscaler_holds_the_batch(unpublished: RabbitVhost) -> None:
    v = unpublished
    cfg = config_for(
        v.monitor_url,
        ("batch1", "batch2"),
        broker=v.broker(timeout_seconds=5),
        claims={"store": "sqlite"},
        autoscaler={"backend": "dry-run"},
    )
    snap, text = collect_once(cfg)
    assert snap.queue("batch1") is None
    assert snap.queues_unpublished == ("batch1",)
    q2 = snap.queue("batch2")  # not declared: truly empty
    assert q2 is not None and (q2.waiting, q2.unacked, q2.consumers) == (0, 0, 0)
    for family in ("celery_queue_length", "celery_queue_unacked", "celery_queue_consumers"):
        assert sample(text, family, {"queue": "batch1"}) is None, family
    assert sample(text, "celery_queue_length", {"queue": "batch2"}) == 0

    backend = RecordingBackend({"batch1": 0, "batch2": 0})
    decisions = {d.queue: d for d in Autoscaler(cfg, FixedSource(snap), backend).tick()}
    held = decisions["batch1"]
    assert held.reason == Reason.NO_DATA
    assert "queue batch1: figures not published yet" in held.detail
    assert backend.calls == []
    assert_no_figures(v)


def test_release_does_not_end_a_claim_on_a_queue_it_cannot_count(
    unpublished: RabbitVhost, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    v = unpublished
    reader = open_reader(config_for(v.monitor_url, ("batch1",), broker=v.broker(),
                                    claims={"store": "sqlite"}).broker)  # fmt: skip
    try:
        with pytest.raises(BrokerUnavailable) as e:
            reader.work_left(["batch1"])
    finally:
        reader.close()
    assert "batch1" in str(e.value)

    cfg = tmp_path / "batchctl.yml"
    claims = {"store": "sqlite", "sqlite_path": str(tmp_path / "claims.sqlite3")}
    cfg.write_text(
        yaml.safe_dump(
            {"broker": v.broker(timeout_seconds=5), "kubernetes": {"enabled": False},
             "claims": claims}
        )
    )  # fmt: skip
    monkeypatch.setenv("USER", "alice")
    monkeypatch.delenv("BATCHCTL_BROKER_URL", raising=False)
    runner = CliRunner()
    claimed = runner.invoke(
        cli, ["claim", "batch1", "--purpose", "reindex", "--ttl", "1h", "-c", str(cfg)]
    )
    assert claimed.exit_code == 0, claimed.output
    assert "what is waiting in batch1 is unknown" in claimed.stderr
    released = runner.invoke(cli, ["release", "batch1", "-c", str(cfg), "-o", "json"])
    assert released.exit_code == 3, released.output  # try again in a few seconds
    assert "not published the figures of queue batch1" in json.loads(released.stdout)["error"]
    status = runner.invoke(cli, ["status", "-c", str(cfg), "-o", "json"])
    row = {b["queue"]: b for b in json.loads(status.stdout)["batches"]}["batch1"]
    assert row["claim"]["holder"] == "alice"  # the claim stands
    assert (row["waiting"], row["in_flight"]) == (None, None)
    assert_no_figures(v)
