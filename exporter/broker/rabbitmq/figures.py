"""The management API's answers -> figures (pure, no I/O).

Per queue (`GET /api/queues/{vhost}?columns=...`): `messages_ready` is what waits
(every priority: RabbitMQ's priority queue, `x-max-priority`, is one queue and counts
none per priority), `messages_unacknowledged` what is delivered and not yet
acknowledged (running or prefetched), `consumers` who is subscribed, `memory` the
queue's own bytes, and `head_message_timestamp` the AMQP `timestamp` property of the
message at the head, when its publisher set one (Celery does not by default).

That head is the oldest waiting message of a plain (FIFO) queue; in a priority queue it
is the next one delivered, the oldest of the highest priority present, so its age is a
lower bound of the oldest message's. The property has one-second resolution. RabbitMQ
refreshes these figures every `collect_statistics_interval` (5 s by default): they
may lag the queue by that much. Before a queue's first statistics (up to that long
after it is declared, and while the node that hosts it is down) the listing names it
without figures, missing or null: its figures are unknown (None here), never 0.

Per node (`GET /api/nodes`): `mem_used` against `mem_limit` (the memory high
watermark) and the `mem_alarm` and `disk_free_alarm` resource alarms, during which
every publishing connection of the cluster is blocked.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

QUEUE_COLUMNS = (
    "name",
    "messages_ready",
    "messages_unacknowledged",
    "consumers",
    "memory",
    "head_message_timestamp",
)
NODE_COLUMNS = ("name", "running", "mem_used", "mem_limit", "mem_alarm", "disk_free_alarm")
ALARMS = ("memory", "disk")


class QueueFigures(NamedTuple):
    """One queue as the management API counts it."""

    waiting: int
    unacked: int
    consumers: int | None  # None: not reported yet
    memory: int  # 0 until reported (it may come a moment after the counts)
    head_timestamp: float | None  # epoch seconds of the head message's `timestamp`


class NodeFigures(NamedTuple):
    """The cluster's memory and alarms, as `BrokerRead` reports them."""

    used_memory: int | None  # of the node nearest its watermark; None: not reported yet
    max_memory: int | None  # that node's mem_limit
    alarms: Mapping[str, bool]  # "memory", "disk" -> raised on any node; absent: unknown


def _count(value: Any) -> int | None:
    """A count as the API gives it; None when it is missing or null (not published yet)
    or not a count at all."""
    return value if type(value) is int and value >= 0 else None


def queue_figures(items: Iterable[Mapping[str, Any]]) -> dict[str, QueueFigures | None]:
    """name -> figures for each item of a queue listing, None for a queue whose
    `messages_ready` or `messages_unacknowledged` is not published yet; items without a
    string name are left out (the API always names them)."""
    out: dict[str, QueueFigures | None] = {}
    for item in items:
        name = item.get("name")
        if not isinstance(name, str):
            continue
        ready = _count(item.get("messages_ready"))
        unacked = _count(item.get("messages_unacknowledged"))
        if ready is None or unacked is None:
            out[name] = None
            continue
        head = item.get("head_message_timestamp")
        out[name] = QueueFigures(
            ready,
            unacked,
            _count(item.get("consumers")),
            _count(item.get("memory")) or 0,
            float(head) if isinstance(head, int | float) and not isinstance(head, bool) else None,
        )
    return out


def is_task_queue(name: str) -> bool:
    """Celery's own plumbing is no task queue: its event receivers' `celeryev.*`
    queues and the `*.pidbox` queues of remote control (as on Redis); nor are the
    server-named queues RabbitMQ reserves `amq.*` for."""
    return not (name.startswith(("celeryev.", "amq.")) or name.endswith(".pidbox"))


def node_figures(items: Iterable[Mapping[str, Any]]) -> NodeFigures:
    """Memory of the node nearest its high watermark (the one whose alarm, raised,
    blocks every publisher of the cluster), and the alarms raised on any node. Nodes
    that are not running, or report no memory yet (a few seconds after boot), count
    for the alarms only."""
    used: int | None = None
    limit: int | None = None
    ratio = -1.0
    alarms: dict[str, bool] = {}
    for node in items:
        for alarm, key in zip(ALARMS, ("mem_alarm", "disk_free_alarm"), strict=True):
            raised = node.get(key)
            if isinstance(raised, bool):  # missing until the node's first statistics
                alarms[alarm] = alarms.get(alarm, False) or raised
        u, m = node.get("mem_used"), node.get("mem_limit")
        if node.get("running") is False or type(u) is not int or type(m) is not int:
            continue
        r = u / m if m > 0 else 0.0
        if r > ratio:
            used, limit, ratio = u, m, r
    return NodeFigures(used, limit, alarms)
