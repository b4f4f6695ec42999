"""The management API's answers read as figures, and its refusals as errors that name
the fix (pure: no server)."""

from __future__ import annotations

import json

import pytest

from batchctl.amqpurl import ManagementTarget
from exporter.broker.protocol import BrokerFault, BrokerRefused, BrokerUnavailable
from exporter.broker.rabbitmq.figures import (
    QueueFigures,
    is_task_queue,
    node_figures,
    queue_figures,
)
from exporter.broker.rabbitmq.management import Forbidden, Management


def test_queue_items_become_figures_and_missing_statistics_are_unknown() -> None:
    items = [
        {"name": "batch1", "messages_ready": 10, "messages_unacknowledged": 2, "consumers": 1,
         "memory": 190376, "head_message_timestamp": 1796683324},
        # Declared a moment ago, before its first statistics: with `columns` RabbitMQ
        # lists the name alone; other versions and paths give null figures.
        {"name": "new"},
        {"name": "nulls", "messages_ready": None, "messages_unacknowledged": None,
         "consumers": None, "memory": None, "head_message_timestamp": None},
        {"name": "half", "messages_ready": 4, "messages_unacknowledged": None},
        {"name": "odd \"q\"\n☃", "messages_ready": -1, "messages_unacknowledged": 0,
         "head_message_timestamp": True},
        # Counted, but its consumers and memory not reported yet: those are unknown.
        {"name": "counted", "messages_ready": 0, "messages_unacknowledged": 3},
        {"messages_ready": 5},  # no name: not a queue the API would list
    ]  # fmt: skip
    assert queue_figures(items) == {
        "batch1": QueueFigures(10, 2, 1, 190376, 1796683324.0),
        "new": None,
        "nulls": None,
        "half": None,
        'odd "q"\n☃': None,
        "counted": QueueFigures(0, 3, None, 0, None),
    }


@pytest.mark.parametrize(
    ("name", "task"),
    [
        ("batch1", True),
        ("celeryev.6e1f", False),
        ("celery@w1.celery.pidbox", False),
        ("amq.gen-JzTY20BRgKO", False),
        ("pidbox", True),
        ("my.celeryev.x", True),
    ],
)
def test_celerys_own_queues_are_not_task_queues(name: str, task: bool) -> None:
    assert is_task_queue(name) is task


def test_the_node_nearest_its_watermark_and_any_raised_alarm() -> None:
    nodes = [
        {"name": "a", "running": True, "mem_used": 500, "mem_limit": 1000,
         "mem_alarm": False, "disk_free_alarm": False},
        {"name": "b", "running": True, "mem_used": 700, "mem_limit": 800,
         "mem_alarm": False, "disk_free_alarm": True},
        {"name": "c", "running": False, "mem_used": 999, "mem_limit": 1000, "mem_alarm": True},
    ]  # fmt: skip
    f = node_figures(nodes)
    assert (f.used_memory, f.max_memory) == (700, 800)
    assert f.alarms == {"memory": True, "disk": True}
    # Just booted: no statistics yet; unknown, not zero, and no alarm said.
    booting = node_figures([{"name": "a"}])
    assert (booting.used_memory, booting.max_memory, booting.alarms) == (None, None, {})


def api() -> Management:
    return Management(ManagementTarget("http://rabbit:15672", "mon", "pw"), timeout=1.0)


@pytest.mark.parametrize(
    ("status", "reason", "kind", "says"),
    [
        (401, "Login failed", BrokerRefused, "refused the user or password"),
        (401, "Not administrator user", Forbidden, "`monitoring` tag"),
        (403, "Access refused.", Forbidden, "`monitoring` tag"),
        (404, "Not Found", BrokerRefused, "does the virtual host exist"),
        (503, "node booting", BrokerUnavailable, "answered 503"),
        (400, "bad", BrokerFault, "answered 400"),
    ],
)
def test_refusals_say_what_to_fix(
    status: int, reason: str, kind: type[Exception], says: str
) -> None:
    error = api()._refusal(status, "/api/queues/%2F", json.dumps({"reason": reason}).encode())
    assert type(error) is kind
    assert says in str(error) and "http://rabbit:15672" in str(error)
    assert "pw" not in str(error).replace("api", "")
