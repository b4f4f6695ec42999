"""Which tasks still wait, as Celery's events tell it: sent, and nothing since (no I/O).

A broker that cannot date its messages (RabbitMQ, when publishers set no AMQP
`timestamp`) leaves the age of a queue's oldest waiting message unknown. Where
producers send `task-sent` events (`task_send_sent_event`), the events date it: a task
whose `task-sent` was seen and no later event of it (received, started, revoked...)
is still waiting, since the producer's clock said `timestamp`. `SentWaiting` keeps
those per queue; `oldest(queue)` is the oldest one's time.

The bound: tasks sent before the exporter's consumer connected are not known, so the
age is a lower bound, as the metric's is everywhere; a task that leaves the queue with
no event (purged, expired in the broker, a worker without -E) would make it an upper
one, so the queue's entries older than LAG_SECONDS are forgotten whenever the broker
says the queue is empty (its figures lag by RabbitMQ's statistics interval, 5 s by
default). Memory is bounded: at most `cap` tasks in all, the oldest dropped first.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

# The broker's figures may be this much older than the events (RabbitMQ's
# collect_statistics_interval, 5 s by default, with room to spare).
LAG_SECONDS = 10.0


class SentWaiting:
    """Per queue, the tasks sent and not heard of since, by uuid, oldest first."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self._lock = threading.Lock()
        self._queues: dict[str, OrderedDict[str, float]] = {}
        self._where: OrderedDict[str, str] = OrderedDict()  # uuid -> queue, in send order

    def observe(self, kind: str, event: Mapping[str, Any]) -> None:
        """Fold one task event in: a `task-sent` adds its task, any other event of the
        task removes it. Malformed events are ignored."""
        uuid = event.get("uuid")
        if not isinstance(uuid, str) or not kind.startswith("task-"):
            return
        with self._lock:
            if kind != "task-sent":
                self._drop(uuid)
                return
            queue, at = event.get("queue"), event.get("timestamp")
            if not isinstance(queue, str) or not queue or not isinstance(at, int | float):
                return
            if not math.isfinite(at) or uuid in self._where:
                return
            self._queues.setdefault(queue, OrderedDict())[uuid] = float(at)
            self._where[uuid] = queue
            while len(self._where) > self.cap:
                self._drop(next(iter(self._where)))

    def oldest(self, queue: str) -> float | None:
        """When the oldest task of `queue` still waiting was sent (epoch seconds): the
        first one seen, as events arrive in the order they were sent (up to clock skew
        between producers)."""
        with self._lock:
            tasks = self._queues.get(queue)
            return next(iter(tasks.values())) if tasks else None

    def emptied(self, queue: str, now: float) -> None:
        """The broker says `queue` holds nothing: forget what was sent before its
        figures were taken (now - LAG_SECONDS)."""
        with self._lock:
            tasks = self._queues.get(queue)
            if not tasks:
                return
            for uuid in [u for u, at in tasks.items() if at < now - LAG_SECONDS]:
                self._drop(uuid)

    def _drop(self, uuid: str) -> None:
        queue = self._where.pop(uuid, None)
        if queue is None:
            return
        tasks = self._queues[queue]
        tasks.pop(uuid, None)
        if not tasks:
            del self._queues[queue]
