"""A queue RabbitMQ lists before its first statistics: unknown, never 0 (pure: no server).

For up to `collect_statistics_interval` (5 s by default) after a queue is declared, the
management API lists its name without figures (`messages_ready` and
`messages_unacknowledged` missing, or null). The reader leaves such a queue out of the
read (no series) and names it in `BrokerRead.unpublished`; the snapshot carries the
names, and the autoscaler holds that batch (`no_data`, "figures not published yet").
Here the management API's answers are the JSON RabbitMQ gives (the listing's shape is
in tests/exporter/broker/rabbitmq/test_figures.py); the real server: test_reader.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from exporter.broker.protocol import BrokerUnavailable
from exporter.broker.rabbitmq.reader import RabbitReader
from exporter.http.exposition import render_snapshot
from exporter.snapshot import Snapshot
from exporter.stats import IncrementalStats
from tests.support.config import config_for
from tests.support.metrics import sample

CFG = config_for(
    "amqp://monitor:pw@rabbit:5672/jobs", ("batch1", "batch2", "batch3"), claims={"store": "sqlite"}
)
NOW = 1_000.0
PUBLISHED = {
    "name": "batch1", "messages_ready": 7, "messages_unacknowledged": 2, "consumers": 1,
    "memory": 10_000, "head_message_timestamp": None,
}  # fmt: skip


class Listing:
    """The management API's answers, as JSON decoded from RabbitMQ's: `items` is the
    queue listing a test changes between reads."""

    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.items = items

    def pages(self, path: str, columns: Sequence[str]) -> Iterator[list[dict[str, Any]]]:
        yield json.loads(json.dumps(self.items))

    def get(self, path: str, params: dict[str, str] | None = None) -> Any:
        return []  # /api/nodes: no node reported yet

    def close(self) -> None:
        pass


def reader(items: list[dict[str, Any]]) -> tuple[RabbitReader, Listing]:
    api = Listing(items)
    return RabbitReader(CFG.broker, management=api), api  # type: ignore[arg-type]


def test_a_queue_without_statistics_is_left_out_and_named() -> None:
    # batch2 declared a moment ago (the name alone); batch3 not declared at all.
    r, api = reader([PUBLISHED, {"name": "batch2"}])
    read = r.read(["batch1", "batch2", "batch3"], NOW)
    assert list(read.queues) == ["batch1", "batch3"]
    assert [q.waiting for q in read.reads] == [7, 0]  # not declared: truly empty
    assert list(read.unpublished) == ["batch2"]
    assert "batch2" not in read.unacked and "batch2" not in read.consumers  # type: ignore[operator]
    # Its first statistics: counted from then on, and no longer named.
    api.items = [PUBLISHED, {**PUBLISHED, "name": "batch2", "messages_ready": 0}]
    read = r.read(["batch1", "batch2", "batch3"], NOW + 5)
    assert list(read.queues) == ["batch1", "batch2", "batch3"]
    assert [q.waiting for q in read.reads] == [7, 0, 0]
    assert read.unacked["batch2"] == 2 and read.changed
    assert list(read.unpublished) == []


def test_null_figures_are_unpublished_too() -> None:
    nulls = {k: None for k in PUBLISHED} | {"name": "batch1"}
    r, _ = reader([nulls])
    read = r.read(["batch1"], NOW)
    assert (list(read.queues), list(read.unpublished)) == ([], ["batch1"])


def test_consumers_not_reported_yet_are_unknown_not_zero() -> None:
    r, _ = reader([{k: v for k, v in PUBLISHED.items() if k != "consumers"}])
    snap = snapshot_of(r, ["batch1"])
    q = snap.queue("batch1")
    assert q is not None and (q.waiting, q.unacked, q.consumers) == (7, 2, None)


def snapshot_of(r: RabbitReader, queues: list[str]) -> Snapshot:
    """What InProcessSource makes of one read (without its AMQP health check)."""
    read = r.read(queues, NOW)
    stats = IncrementalStats({b.queue: b.deployment for b in CFG.batches}).build(read, NOW, None)
    return Snapshot(
        taken_at=NOW,
        duration_seconds=0.01,
        broker_up=True,
        kubernetes_up=None,
        queues=stats,
        queues_unpublished=tuple(read.unpublished),
    )


def test_no_series_for_an_unpublished_queue_and_the_snapshot_names_it() -> None:
    r, _ = reader([PUBLISHED, {"name": "batch2", "messages_ready": None}])
    snap = snapshot_of(r, ["batch1", "batch2", "batch3"])
    assert snap.queue("batch2") is None
    assert snap.queues_unpublished == ("batch2",)
    text = render_snapshot(snap, version="t", kubernetes_enabled=False, broker="rabbitmq")
    for family in ("celery_queue_length", "celery_queue_unacked", "celery_queue_consumers"):
        assert sample(text, family, {"queue": "batch1"}) is not None
        assert sample(text, family, {"queue": "batch2"}) is None, family
    assert sample(text, "celery_queue_length", {"queue": "batch3"}) == 0
    # The sidecar reads the same through /api/v1/snapshot.
    back = Snapshot.from_json(json.loads(json.dumps(snap.to_json())))
    assert back.queues_unpublished == ("batch2",)


def test_work_left_of_an_unpublished_queue_is_unknown() -> None:
    """`batchctl release` must not end a claim on a queue it cannot count."""
    r, _ = reader([PUBLISHED, {"name": "batch2"}])
    assert r.work_left(["batch1", "batch3"]) == {"batch1": (7, 2), "batch3": (0, 0)}
    with pytest.raises(BrokerUnavailable) as e:
        r.work_left(["batch1", "batch2"])
    assert "batch2" in str(e.value) and "not published" in str(e.value)
