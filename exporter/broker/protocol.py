"""What a snapshot needs from a broker: the seam between the exporter and any broker.

`exporter.collect.InProcessSource` reads a broker only through `BrokerReader`, and
`batchctl release` asks it what work is left (`work_left`); `exporter.broker.open_reader`
picks the implementation from the broker URL's scheme. The first implementation reads
kombu's Redis layout (exporter/broker/redis/). A reader of RabbitMQ's management API
fits the same shape: a queue's `messages_ready` is `waiting`, `messages_unacknowledged`
is in flight (`unacked`) and its `memory` is the queue's memory; the node's
`mem_used`/`mem_limit` are `used_memory`/`max_memory`; queues come from
`GET /api/queues/{vhost}` (discovery), health from any cheap request (`ping`). Figures
only some brokers give (RabbitMQ's consumers per queue, its memory and disk alarms)
are `BrokerRead` fields with defaults (`consumers`, `alarms`), so that other readers
need not change; exporter/broker/rabbitmq/ is that reader.

Error contract: every call but `close` may raise one of the reader's `errors` when the broker
does not answer, refuses us, or answers something that cannot be read (the Redis reader:
`redis.RedisError`, which covers connection, TLS, auth and Sentinel failures; readers
without a client library's own errors raise `BrokerError`'s kinds below). The
snapshot source reports those as `celery_broker_up 0` with the error's text, and logs
anything else as a bug; an error's text never holds a credential once the source has
scrubbed the URL and secrets from it. No call writes to, deletes or moves a message.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from batchctl.claims import Claim
from exporter.snapshot import BrokerDurability


class BrokerError(Exception):
    """A reader's own failure, for readers whose client library has no error family of
    its own (RabbitMQ's management API over HTTP). `str(e)` is safe to show: it names
    where (a URL without its password) and why, and the fix when there is one."""


class BrokerUnavailable(BrokerError):
    """The broker cannot be reached or did not answer in time: try again later."""


class BrokerRefused(BrokerError):
    """Reached, and it refuses us as configured (credentials, permissions, a virtual host
    it does not have): the config must change."""


class BrokerFault(BrokerError):
    """Reached, and it answered something that cannot be read."""


class QueueRead(NamedTuple):
    """One queue as read: the same object while none of its figures changed."""

    waiting: int  # messages ready for a consumer, every priority included
    # Waiting per priority step, only the steps that hold messages; {} when the broker
    # does not count per priority.
    priority_lengths: Mapping[int, int]
    oldest_seen: float | None  # when its oldest waiting message was first seen (epoch s)
    # False when the broker cannot date the queue's waiting messages (RabbitMQ without
    # publish timestamps): its age is unknown, never 0.
    age_known: bool = True


EMPTY = QueueRead(0, {}, None)


@dataclass(frozen=True)
class BrokerRead:
    """Everything one read found, for the queues it was asked about."""

    queues: Sequence[str]
    reads: Sequence[QueueRead]  # aligned with `queues`
    # Any queue's figures moved since the previous read (True when unsure): a False lets
    # the source reuse the last read's stats.
    changed: bool
    unacked: Mapping[str, int]  # queue -> messages delivered and not yet acknowledged
    used_memory: int | None  # bytes the broker uses; None: unknown (INFO refused)
    max_memory: int | None  # bytes it may use; 0: no limit; None: unknown
    memory: Mapping[str, int]  # queue -> bytes, from the last memory sample
    # batchctl's claim records of `claim_queues`, where the broker keeps them (Redis);
    # empty from a broker that keeps none.
    claims: Mapping[str, Claim] = field(default_factory=dict)
    # Whether those claims survive a broker restart, and claims a restart lost; None
    # where unknown (not checked yet, or a broker that keeps no claims).
    durability: BrokerDurability | None = None
    # queue -> consumers subscribed to it, where the broker counts them (RabbitMQ; a
    # queue absent: not reported yet, unknown); None: the broker does not (Redis).
    consumers: Mapping[str, int] | None = None
    # Resource alarms ("memory", "disk") -> raised now, where the broker has them
    # (RabbitMQ blocks every publisher while one is raised); {}: none known.
    alarms: Mapping[str, bool] = field(default_factory=dict)
    # Of `unacked`, per queue: messages a worker holds for a future ETA (Celery's ETA and
    # countdown tasks), and messages delivered longer ago than the broker's visibility
    # timeout (a running worker would have restored them). Disjoint; {} from a broker
    # that cannot tell (then they count as ordinary in-flight work).
    scheduled: Mapping[str, int] = field(default_factory=dict)
    overdue: Mapping[str, int] = field(default_factory=dict)
    # Queues asked about that the broker lists without figures yet (RabbitMQ, before its
    # first statistics of a queue): unknown, so left out of `queues`. () from Redis.
    unpublished: Sequence[str] = ()


class QueueWork(NamedTuple):
    """What is left in one queue: messages waiting and in flight."""

    waiting: int
    in_flight: int


class Discovered(Protocol):
    """The task queues a broker names by itself (not only the configured ones)."""

    @property
    def queues(self) -> Mapping[str, object]:
        """Exported queue name -> the broker's own handle for it (e.g. raw bytes)."""
        ...

    @property
    def skipped(self) -> Mapping[str, int]:
        """Reason -> how many queues (or bindings) were left out of discovery, for
        celery_exporter_queues_skipped."""
        ...


class BrokerReader(Protocol):
    """A broker, read-only: queues, their lengths per priority, in flight, ages, memory.

    Not thread-safe: the snapshot source serialises reads (one in flight at a time),
    and `discover` only replaces `discovery` whole.
    """

    @property
    def errors(self) -> tuple[type[Exception], ...]:
        """The exceptions that mean the broker is down or unreadable (module docstring)."""
        ...

    @property
    def safe_url(self) -> str:
        """The broker URL without its password, for logs and errors."""
        ...

    @property
    def discovery(self) -> Discovered:
        """The last `discover()`'s result; empty before the first."""
        ...

    def ping(self) -> None:
        """One cheap request: is the broker there at all (connection, TLS, auth)?"""
        ...

    def discover(self) -> Discovered:
        """Find the broker's task queues (off the scrape path: may be slow)."""
        ...

    def read(
        self,
        queues: Sequence[str],
        now: float,
        claim_queues: Sequence[str] = (),
        clock: Callable[[], float] | None = None,
    ) -> BrokerRead:
        """`queues` as they are at `now` (epoch seconds), and the claim records of
        `claim_queues`, in as few round trips as the broker allows. `clock` (the source's,
        None: `now` throughout) is read again after each round trip to date what it found
        new: a message found by a read was pushed before its answer, not before `now`."""
        ...

    def work_left(self, queues: Sequence[str]) -> dict[str, QueueWork]:
        """Per queue of `queues`, the messages waiting and in flight now: what
        `batchctl release` checks before it ends a claim. No memory sampling."""
        ...

    def close(self) -> None:
        """Finish the reader's own pending writes, if it has any (the Redis reader's
        first-seen times), and close the connection; raises none of `errors`."""
        ...
