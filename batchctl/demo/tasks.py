"""A real Celery app for the demo and the tests: a task that sleeps and records its id.

Beside it, for the tests of Celery's events: a task that fails (`fail`) and one that
retries a given number of times before it succeeds (`flaky`).

Workers start it with `celery -A batchctl.demo.tasks worker ...`; the broker URL
comes from the environment (CELERY_BROKER_URL, see batchctl/workers.py), never from
the command line, so a password never shows up in `ps`. Completion is recorded in the
broker's Redis as `SADD batchctl:demo:done:<queue> <task id>`: a set, because delivery
is at least once (acks_late), and counting ids is how the demo proves that no task was
lost. With a RabbitMQ broker, which keeps no such sets, they are recorded in the Redis
that BATCHCTL_DEMO_RECORD_URL names (the demo starts one of its own), and the app
declares its queues with `x-max-priority` (Celery's task_queue_max_priority), so that
priorities 0-9 are RabbitMQ's.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import redis
from celery import Celery, Task

from batchctl.workers import ENV_BROKER_URL, ENV_KEYPREFIX

ENV_PREFETCH = "BATCHCTL_DEMO_PREFETCH_MULTIPLIER"
# "0": Celery's default early acknowledgement (a running task is in no Redis structure).
ENV_ACKS_LATE = "BATCHCTL_DEMO_ACKS_LATE"
# Where the tasks record their ids: a Redis URL; default: the broker's (when Redis).
ENV_RECORD_URL = "BATCHCTL_DEMO_RECORD_URL"
# RabbitMQ's priority range for the demo's queues (x-max-priority; 0-9 as kombu's steps).
MAX_PRIORITY = 9
DEFAULT_BROKER_URL = "redis://localhost:6379/0"
TASK_NAME = "batchctl.demo.tasks.work"
FAIL_TASK = "batchctl.demo.tasks.fail"
FLAKY_TASK = "batchctl.demo.tasks.flaky"
DONE_KEY = "batchctl:demo:done:{queue}"
# Task ids that have started running (before their sleep): tests wait on it.
STARTED_KEY = "batchctl:demo:started:{queue}"


def done_key(queue: str, prefix: str = "") -> str:
    """The set of completed task ids for `queue` (honours the broker's global_keyprefix)."""
    return prefix + DONE_KEY.format(queue=queue)


def make_app(
    broker_url: str | None = None,
    *,
    keyprefix: str | None = None,
    prefetch_multiplier: int | None = None,
    sent_events: bool = False,
    record_url: str | None = None,
) -> Celery:
    """A Celery app with the demo tasks registered; arguments default to the environment.

    Tests build their own app for the producer side (pointing at their Redis); worker
    processes use the module-level `app`, configured from the environment. With
    `sent_events` the app sends a `task-sent` event for every task it publishes (Celery's
    `task_send_sent_event`, the only event that names the queue). `record_url` is the
    Redis where tasks record their ids (default: $BATCHCTL_DEMO_RECORD_URL, else the
    broker).
    """
    url = broker_url or os.environ.get(ENV_BROKER_URL) or DEFAULT_BROKER_URL
    prefix = keyprefix if keyprefix is not None else os.environ.get(ENV_KEYPREFIX, "")
    prefetch = prefetch_multiplier or int(os.environ.get(ENV_PREFETCH, "4"))
    transport_options: dict[str, Any] = {}
    if prefix:
        transport_options["global_keyprefix"] = prefix
    celery_app = Celery("batchctl.demo.tasks", broker=url, set_as_current=False)
    celery_app.conf.update(
        # Acknowledge after the task ran: a worker killed mid-task leaves the message in
        # `unacked`, to be redelivered, instead of losing it.
        task_acks_late=os.environ.get(ENV_ACKS_LATE, "1") != "0",
        task_send_sent_event=sent_events,
        worker_prefetch_multiplier=prefetch,
        task_ignore_result=True,
        broker_transport_options=transport_options,
        broker_connection_retry_on_startup=True,
        batchctl_record_url=record_url or os.environ.get(ENV_RECORD_URL) or url,
    )
    if url.partition("://")[0].lower() in ("amqp", "amqps", "pyamqp"):
        # RabbitMQ's priority is a queue argument: every queue Celery declares gets it.
        celery_app.conf.task_queue_max_priority = MAX_PRIORITY
    celery_app.task(bind=True, name=TASK_NAME)(_work)
    celery_app.task(bind=True, name=FAIL_TASK)(_fail)
    celery_app.task(bind=True, name=FLAKY_TASK, max_retries=None)(_flaky)
    return celery_app


# One client per process: prefork children must not share their parent's sockets,
# so the client is keyed by pid and created on first use after the fork.
_clients: dict[tuple[int, str], redis.Redis] = {}


def _client_for(url: str) -> redis.Redis:
    key = (os.getpid(), url)
    client = _clients.get(key)
    if client is None:
        client = redis.Redis.from_url(url)
        _clients[key] = client
    return client


def record_client(celery_app: Celery) -> tuple[redis.Redis, str]:
    """The Redis where this app's tasks record their ids, and its key prefix."""
    conf = celery_app.conf
    prefix = (conf.broker_transport_options or {}).get("global_keyprefix", "")
    return _client_for(conf.get("batchctl_record_url") or conf.broker_url), prefix


def _work(self: Task, seconds: float, payload: str = "") -> str:
    """Record this task's id as started, sleep `seconds`, then record it as done (the
    sets of its queue)."""
    request = self.request
    delivery = request.delivery_info or {}
    # Producers pass queue=...: with Celery's default direct exchange the routing key
    # is the queue the message was delivered from.
    queue = delivery.get("routing_key") or "unknown"
    client, prefix = record_client(self.app)
    client.sadd(prefix + STARTED_KEY.format(queue=queue), request.id)
    time.sleep(seconds)
    client.sadd(done_key(queue, prefix), request.id)
    return str(request.id)


class DemoFailure(Exception):
    """What `fail` raises: a task failing on purpose."""


def _fail(self: Task, seconds: float = 0.0) -> None:
    """Sleep `seconds`, then fail."""
    time.sleep(seconds)
    raise DemoFailure(f"task {self.request.id} fails on purpose")


def _flaky(self: Task, seconds: float, retries: int) -> str:
    """Sleep `seconds`; retry at once until it has been retried `retries` times."""
    time.sleep(seconds)
    if self.request.retries < retries:
        raise self.retry(countdown=0)
    return str(self.request.id)


app = make_app()
work = app.tasks[TASK_NAME]


def enqueue(
    celery_app: Celery,
    queue: str,
    n: int,
    *,
    seconds: float = 0.1,
    priorities: Sequence[int] = (0, 9),
    payload_bytes: int = 0,
    seed: int | None = None,
    batch: int = 500,
) -> list[str]:
    """Publish `n` demo tasks to `queue`, mixing `priorities`; return their ids in order.

    Every message goes through Celery's own `apply_async` (real envelopes, priority
    lists, delivery tags), on one producer. kombu's Redis transport would otherwise
    spend a fresh client object and a round trip per message (~1,400 tasks/s here);
    handing its publish path a pipeline for `batch` messages at a time makes that one
    round trip per batch (~4,500 tasks/s). See `_pipelined_publish` for the safety net.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if not priorities:
        raise ValueError("priorities must not be empty, e.g. (0, 9)")
    task = celery_app.tasks[TASK_NAME]
    rng = random.Random(seed)
    payload = "x" * payload_bytes
    ids: list[str] = []
    with celery_app.producer_or_acquire() as producer, _pipelined_publish(producer) as flush:
        for i in range(n):
            result = task.apply_async(
                args=(seconds,),
                kwargs={"payload": payload} if payload else {},
                queue=queue,
                priority=rng.choice(priorities),
                producer=producer,
            )
            ids.append(str(result.id))
            if (i + 1) % batch == 0:
                flush()
    return ids


@contextmanager
def _pipelined_publish(producer: Any) -> Iterator[Callable[[], None]]:
    """Buffer the LPUSHes of kombu's Redis `_put` in a pipeline; yield a flush function.

    kombu's `Channel._put` does `with self.conn_or_acquire() as client: client.lpush(...)`
    and nothing else with the client, so yielding a pipeline there only delays the
    pushes. Should a kombu upgrade change that, the check in `flush` (every buffered
    reply must be an LPUSH length) fails loudly instead of losing messages quietly; a
    transport without `conn_or_acquire` (not Redis) simply publishes unbuffered.
    """
    channel = producer.channel
    if not hasattr(channel, "conn_or_acquire") or not hasattr(channel, "client"):
        yield lambda: None
        return
    pipe = channel.client.pipeline(transaction=False)

    @contextmanager
    def conn_or_acquire(client: Any = None) -> Iterator[Any]:
        yield pipe

    def flush() -> None:
        replies = pipe.execute()
        if not all(isinstance(r, int) for r in replies):
            raise RuntimeError(f"unexpected replies from a pipelined publish: {replies[:3]!r}")

    channel.conn_or_acquire = conn_or_acquire
    try:
        yield flush
        flush()
    finally:
        # Instance attribute only: removing it restores the class's method.
        del channel.conn_or_acquire
        pipe.reset()


def started_count(client: redis.Redis, queue: str, prefix: str = "") -> int:
    """How many tasks of `queue` have started running (redeliveries counted once)."""
    return int(client.scard(prefix + STARTED_KEY.format(queue=queue)))


def done_ids(client: redis.Redis, queue: str, prefix: str = "") -> set[str]:
    """The ids of tasks that completed on `queue` (at least once)."""
    members = client.smembers(done_key(queue, prefix))
    return {m.decode() if isinstance(m, bytes) else str(m) for m in members}


def done_count(client: redis.Redis, queue: str, prefix: str = "") -> int:
    return int(client.scard(done_key(queue, prefix)))
