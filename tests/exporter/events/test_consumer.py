"""The events consumer on the broker as Celery's apps see it: the same key prefix (kombu
prefixes the pub/sub channels too), events published with Celery's own dispatcher."""

from __future__ import annotations

import time

import redis

from batchctl.demo.tasks import make_app
from exporter.events.consumer import EventsConsumer
from exporter.events.model import UNKNOWN
from tests.support.servers.redis import RedisServer
from tests.support.waits import wait_for
from tests.support.workers import events_config, wait_connected


def publish(url: str, keyprefix: str, n: int) -> None:
    app = make_app(url, keyprefix=keyprefix)
    with app.connection_for_write() as conn:
        dispatcher = app.events.Dispatcher(conn, hostname="batch1@publisher")
        for i in range(n):
            dispatcher.send("task-received", uuid=f"t{i}", name="app.x")
            dispatcher.send("task-started", uuid=f"t{i}")


def test_the_consumer_follows_the_apps_key_prefix(
    redis_server: RedisServer, redis_db: redis.Redis
) -> None:
    ours = EventsConsumer(events_config(redis_server.url), wakeup=False)
    prefixed = events_config(redis_server.url)
    prefixed = prefixed.model_copy(
        update={"broker": prefixed.broker.model_copy(update={"global_keyprefix": "pfx:"})}
    )
    theirs = EventsConsumer(prefixed, wakeup=False)
    for c in (ours, theirs):
        c.start()
    try:
        for c in (ours, theirs):
            wait_connected(c)
        publish(redis_server.url, "pfx:", 3)
        wait_for(lambda: theirs.aggregator.received == 6, 10, what="the prefixed events")
        publish(redis_server.url, "", 2)
        wait_for(lambda: ours.aggregator.received == 4, 10, what="the unprefixed events")
        time.sleep(0.3)  # nothing of the other app's arrives
        assert (theirs.aggregator.received, ours.aggregator.received) == (6, 4)
        # No task-sent, and no worker that answers for its queues: the queue is unknown.
        q = theirs.view(time.time()).queue(UNKNOWN)
        assert q is not None and q.active == 3 and q.task_events
    finally:
        for c in (ours, theirs):
            c.stop()
