"""The RabbitMQ reader: every queue of the vhost in one management API request, read-only.

A `BrokerReader` (exporter/broker/protocol.py) for `amqp://`, `amqps://` and
`pyamqp://` brokers. A read is one paginated `GET /api/queues/{vhost}` with only the
columns it needs (one request up to 500 queues, one more per 500 after that), never one
per queue, and at most every NODES_EVERY_SECONDS a `GET /api/nodes` for memory and
alarms. `ping` checks the management API (the vhost exists, the credentials work) and
opens an AMQP connection as Celery would (health.py). Nothing is declared, consumed,
published or moved: the management API is only read (GET), and the AMQP connection
opens no channel.

The figures (figures.py): waiting is `messages_ready`, in flight is
`messages_unacknowledged`, plus consumers, memory, and the age of the head message
where publishers set AMQP timestamps (else unknown: `QueueRead.age_known` False).
A configured queue that is not declared yet reads as empty, with no consumers. A queue
the API lists without figures (before RabbitMQ's first statistics of it, up to
`collect_statistics_interval` after it is declared) is unknown, never 0: left out of
the read's queues (no series) and named in `BrokerRead.unpublished`; `work_left` raises
BrokerUnavailable for it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from batchctl.amqpurl import management_target, parse_amqp_urls
from batchctl.config import BrokerConfig
from batchctl.log import get_logger
from batchctl.redact import redact_url
from exporter.broker.protocol import (
    EMPTY,
    BrokerError,
    BrokerRead,
    BrokerUnavailable,
    QueueRead,
    QueueWork,
)
from exporter.broker.rabbitmq.figures import (
    NODE_COLUMNS,
    QUEUE_COLUMNS,
    NodeFigures,
    QueueFigures,
    is_task_queue,
    node_figures,
    queue_figures,
)
from exporter.broker.rabbitmq.health import check_amqp
from exporter.broker.rabbitmq.management import Forbidden, Management, vhost_path

log = get_logger("batchctl.rabbitmq")

# RabbitMQ refreshes node and queue statistics every collect_statistics_interval (5 s by
# default): reading the nodes more often would read the same figures again.
NODES_EVERY_SECONDS = 5.0
# A user refused /api/nodes is asked again this often (it may get the tag meanwhile).
NODES_REFUSED_RETRY_SECONDS = 600.0
_NO_FIGURES = QueueFigures(0, 0, 0, 0, None)
_UNKNOWN_NODES = NodeFigures(None, None, {})


@dataclass(frozen=True)
class Discovery:
    """The vhost's task queues by name (RabbitMQ names are text: the handle is the name)."""

    queues: Mapping[str, str] = field(default_factory=dict)
    skipped: Mapping[str, int] = field(default_factory=dict)


class RabbitReader:
    """Reads a RabbitMQ vhost through the management API. Not thread-safe: the snapshot
    source serialises reads, and `discover` only replaces `discovery` whole."""

    errors: tuple[type[Exception], ...] = (BrokerError,)

    def __init__(self, cfg: BrokerConfig, management: Management | None = None) -> None:
        self.cfg = cfg
        self.targets = parse_amqp_urls(cfg.url)
        self.vhost = self.targets[0].vhost
        self.api = management or Management(
            management_target(cfg.url, cfg.management_url), cfg.timeout_seconds, cfg.use_ssl
        )
        self.discovery = Discovery()
        self._queues_path = f"/api/queues/{vhost_path(self.vhost)}"
        # Per queue: the figures last read and the QueueRead built from them (the same
        # object while they do not change, which lets the source skip rebuilding stats).
        self._last: dict[str, tuple[QueueFigures, QueueRead]] = {}
        self._names: list[str] = []
        self._unacked: dict[str, int] = {}
        self._memory: dict[str, int] = {}
        self._consumers: dict[str, int] = {}
        self._nodes = _UNKNOWN_NODES
        self._nodes_at = float("-inf")
        self._nodes_refused = False

    @property
    def safe_url(self) -> str:
        return redact_url(self.cfg.url)

    # -- the protocol -------------------------------------------------------------------

    def ping(self) -> None:
        """The vhost through the management API (credentials, tags, that it exists), then
        an AMQP connection opened and closed (health.py)."""
        # The smallest page of the vhost's queues: a 404 when the vhost does not exist.
        self.api.get(self._queues_path, {"page": "1", "page_size": "1", "columns": "name"})
        check_amqp(self.targets, self.cfg.amqp_ssl(), self.cfg.timeout_seconds)

    def discover(self) -> Discovery:
        """The vhost's task queues (Celery's event and remote-control queues left out)."""
        names = [
            item["name"]
            for page in self.api.pages(self._queues_path, ("name",))
            for item in page
            if isinstance(item.get("name"), str)
        ]
        found = Discovery({n: n for n in sorted(names) if is_task_queue(n)})
        self.discovery = found
        return found

    def read(
        self,
        queues: Sequence[str],
        now: float,
        claim_queues: Sequence[str] = (),
        clock: Callable[[], float] | None = None,  # nothing dated by first sighting here
    ) -> BrokerRead:
        """`queues` as the management API counts them now; claims are never here
        (claims.store keeps them elsewhere)."""
        figures = self._list()
        unpublished = [q for q in queues if q in figures and figures[q] is None]
        skip = set(unpublished)
        changed = self._fold([q for q in queues if q not in skip], figures)
        nodes = self._read_nodes()
        return BrokerRead(
            queues=self._names,
            reads=[self._last[q][1] for q in self._names],
            changed=changed,
            unacked=self._unacked,
            used_memory=nodes.used_memory,
            max_memory=nodes.max_memory,
            memory=self._memory,
            consumers=self._consumers,
            alarms=nodes.alarms,
            unpublished=unpublished,
        )

    def work_left(self, queues: Sequence[str]) -> dict[str, QueueWork]:
        """Ready and unacknowledged per queue, from the same one listing. Raises
        BrokerUnavailable for a queue whose figures are not published yet: its work left
        is unknown, and a claim must not end on a guess."""
        figures = self._list()
        out = {}
        for q in queues:
            f = figures.get(q, _NO_FIGURES)
            if f is None:
                raise BrokerUnavailable(
                    f"RabbitMQ has not published the figures of queue {q} yet (it does "
                    "every collect_statistics_interval, 5 s by default, once a queue is "
                    "declared): the work left in it is unknown; try again in a few seconds"
                )
            out[q] = QueueWork(f.waiting, f.unacked)
        return out

    def close(self) -> None:
        self.api.close()

    # -- internals ----------------------------------------------------------------------

    def _list(self) -> dict[str, QueueFigures | None]:
        out: dict[str, QueueFigures | None] = {}
        for page in self.api.pages(self._queues_path, QUEUE_COLUMNS):
            out.update(queue_figures(page))
        return out

    def _fold(self, names: list[str], figures: Mapping[str, QueueFigures | None]) -> bool:
        """Keep each queue's QueueRead while its figures stay the same; rebuild the
        per-queue mappings only when something moved. Returns whether anything did.
        `names` holds no queue whose figures are unpublished (None)."""
        changed = names != self._names
        last = self._last
        new: dict[str, tuple[QueueFigures, QueueRead]] = {}
        for name in names:
            f = figures.get(name) or _NO_FIGURES
            prev = last.get(name)
            if prev is not None and prev[0] == f:
                new[name] = prev
                continue
            changed = True
            read = (
                QueueRead(f.waiting, {}, f.head_timestamp, age_known=f.head_timestamp is not None)
                if f.waiting
                else EMPTY
            )
            new[name] = (f, read)
        self._last, self._names = new, names
        if changed:
            self._unacked = {n: fr[0].unacked for n, fr in new.items() if fr[0].unacked}
            self._memory = {n: fr[0].memory for n, fr in new.items() if fr[0].memory}
            # A queue whose consumers are not reported yet has none here: unknown.
            self._consumers = {
                n: fr[0].consumers for n, fr in new.items() if fr[0].consumers is not None
            }
        return changed

    def _read_nodes(self) -> NodeFigures:
        """Memory and alarms, at most every NODES_EVERY_SECONDS. A user without the
        `monitoring` tag may not read them: then they are unknown (said once), and the
        queues are still read."""
        now = time.monotonic()
        wait = NODES_REFUSED_RETRY_SECONDS if self._nodes_refused else NODES_EVERY_SECONDS
        if now - self._nodes_at < wait:
            return self._nodes
        self._nodes_at = now
        try:
            items = self.api.get("/api/nodes", {"columns": ",".join(NODE_COLUMNS)})
        except Forbidden as e:
            if not self._nodes_refused:
                log.warning("broker memory and alarms unknown", error=str(e))
            self._nodes_refused = True
            self._nodes = _UNKNOWN_NODES
            return self._nodes
        except BrokerError:
            self._nodes_at = float("-inf")  # the read fails; try again next time
            raise
        self._nodes_refused = False
        self._nodes = node_figures(items if isinstance(items, list) else [])
        return self._nodes
