"""The snapshot: one consistent reading of the broker and the cluster, and its pure maths.

Everything here is free of I/O so that it can be tested exhaustively; the readers in
`broker.py` and `kube.py` feed it, and metrics, the status page, the JSON API and the
autoscaler all consume the same `Snapshot`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any, AnyStr, NamedTuple, Protocol

from batchctl.claims import Claim
from exporter.durability import BrokerDurability
from exporter.events.model import EventsView, QueueActivity
from exporter.progress import Progress

# kombu's default separator between a queue name and its priority step, and between
# the parts of a binding member (kombu.transport.redis.Channel.sep; `broker.sep`).
PRIORITY_SEP = "\x06\x16"


def priority_list_name(queue: str, step: int, prefix: str = "", sep: str = PRIORITY_SEP) -> str:
    """The Redis key of `queue`'s list for priority `step` (step 0 is the bare name),
    as kombu's `Channel._q_for_pri` names it."""
    return f"{prefix}{queue}{sep}{step}" if step else f"{prefix}{queue}"


def list_key(raw_queue: bytes, step: int, prefix: bytes = b"", sep: bytes = b"\x06\x16") -> bytes:
    """`priority_list_name` on the queue's raw bytes (names need not be UTF-8)."""
    return b"%s%s%s%d" % (prefix, raw_queue, sep, step) if step else prefix + raw_queue


def parse_binding(member: AnyStr, sep: AnyStr) -> tuple[AnyStr, AnyStr, AnyStr] | None:
    """A `_kombu.binding.<exchange>` member -> (routing_key, pattern, queue).

    kombu joins the three with `sep` and splits them the same way
    (`Channel._queue_bind`, `get_table`): any other number of parts is not a binding
    kombu itself could route by.
    """
    parts = member.split(sep)
    if len(parts) != 3 or not parts[2]:
        return None
    return parts[0], parts[1], parts[2]


# Celery's own plumbing: broadcast (fanout, pub/sub) and reply queues, not task queues.
_INTERNAL_EXCHANGES = ("celery.pidbox", "reply.celery.pidbox", "celeryev")


def is_task_queue(exchange: str, queue: str) -> bool:
    if exchange in _INTERNAL_EXCHANGES:
        return False
    return not (queue.endswith(".pidbox") or queue.startswith("celeryev."))


class ListRead(NamedTuple):
    """One priority list as read from Redis: its length and the tags at both ends.

    Tuples, not dataclasses: thousands are built per scrape and tuples build fastest.
    """

    length: int
    tail_tag: str | None = None  # the oldest message (consumers BRPOP the tail)
    head_tag: str | None = None  # the newest message (producers LPUSH the head)


@dataclass(frozen=True, slots=True)
class Deployment:
    name: str
    replicas: int  # spec.replicas: what is asked for
    ready_replicas: int  # status.readyReplicas: what is consuming


class QueueStats(NamedTuple):
    queue: str
    waiting: int
    priority_lengths: Mapping[int, int]  # only lists that exist (length > 0)
    unacked: int
    oldest_age_seconds: float
    memory_bytes: int
    configured: bool
    deployment: str | None = None
    replicas: int | None = None
    ready_replicas: int | None = None

    @property
    def work(self) -> int:
        """Waiting plus in flight: zero only when the batch has truly nothing to do."""
        return self.waiting + self.unacked


@dataclass(frozen=True, slots=True)
class Snapshot:
    taken_at: float
    duration_seconds: float
    broker_up: bool
    kubernetes_up: bool | None  # None: Kubernetes disabled in the config
    queues: tuple[QueueStats, ...] = ()
    broker_error: str | None = None
    kubernetes_error: str | None = None
    broker_memory_used_bytes: int | None = None
    broker_memory_max_bytes: int | None = None
    # Discovered queues the cardinality cap (broker.max_queues) hides right now.
    queues_dropped: int = 0
    # Queues (or binding members) left out because of what they are, by reason.
    queues_skipped: Mapping[str, int] = field(default_factory=dict)
    # Configured batches' Deployments by queue: known even while the broker is down.
    deployments: Mapping[str, Deployment] = field(default_factory=dict)
    # Changes whenever anything but the ages changed since the previous snapshot of the
    # same collector; None when unknown. Lets the renderer reuse unchanged families.
    generation: int | None = None
    # Claim records of the configured batches (read in the same round trip), by queue.
    claims: Mapping[str, Claim] = field(default_factory=dict)
    # Celery's task and worker events (exporter/events/); None: events are off.
    events: EventsView | None = None
    # Pace, failures and ETA of the configured batches (exporter/progress.py), by queue.
    progress: Mapping[str, Progress] = field(default_factory=dict)
    # Whether the broker keeps its data across a restart, and claims lost in one
    # (exporter/durability.py); None: not checked yet.
    durability: BrokerDurability | None = None
    _index: dict[str, QueueStats] = field(
        default_factory=dict, compare=False, repr=False, init=False
    )

    def __post_init__(self) -> None:
        self._index.update({q.queue: q for q in self.queues})

    def queue(self, name: str) -> QueueStats | None:
        return self._index.get(name)

    @property
    def events_up(self) -> bool:
        """Events are on and the consumer is connected now."""
        return self.events is not None and self.events.up

    def activity(self, name: str) -> QueueActivity | None:
        """The queue's tasks and workers by the events, while the consumer is connected."""
        return self.events.queue(name) if self.events is not None and self.events.up else None

    def to_json(self) -> dict[str, object]:
        skip = ("_index", "queues", "generation", "claims", "events", "progress", "durability")
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in skip}
        out["durability"] = None if self.durability is None else self.durability.to_json()
        out["claims"] = {q: c.to_json(self.taken_at) for q, c in self.claims.items()}
        out["events"] = None if self.events is None else self.events.to_json()
        out["progress"] = {q: p.to_json() for q, p in self.progress.items()}
        out["deployments"] = {q: asdict(d) for q, d in self.deployments.items()}
        queues = []
        for q in self.queues:
            row = q._asdict()
            row["priority_lengths"] = {str(k): v for k, v in q.priority_lengths.items()}
            row["work"] = q.work
            queues.append(row)
        out["queues"] = queues
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Snapshot:
        """The inverse of `to_json`: a snapshot as the exporter's /api/v1/snapshot serves it.

        Keys this version does not know are ignored and missing optional ones take their
        defaults, so an exporter and a sidecar of neighbouring versions understand each
        other. Raises KeyError, TypeError or ValueError for a document that is not one.
        """
        queues = []
        for row in data.get("queues") or ():
            values = {f: row[f] for f in QueueStats._fields if f in row}
            values["priority_lengths"] = {
                int(k): int(v) for k, v in (row.get("priority_lengths") or {}).items()
            }
            queues.append(QueueStats(**values))
        deployments = {
            str(q): Deployment(str(d["name"]), int(d["replicas"]), int(d["ready_replicas"]))
            for q, d in (data.get("deployments") or {}).items()
        }
        claims = {str(q): Claim.from_json(str(q), c) for q, c in (data.get("claims") or {}).items()}
        events = data.get("events")
        progress = {str(q): Progress.from_json(p) for q, p in (data.get("progress") or {}).items()}
        skip = {"queues", "deployments", "claims", "generation", "_index", "events", "progress"}
        skip.add("durability")
        durability = data.get("durability")
        scalars = {
            f.name: data[f.name] for f in fields(cls) if f.name not in skip and f.name in data
        }
        return cls(
            **scalars,
            queues=tuple(queues),
            deployments=deployments,
            claims=claims,
            events=None if events is None else EventsView.from_json(events),
            progress=progress,
            durability=None if durability is None else BrokerDurability.from_json(durability),
        )


def tier(depth: int, thresholds: Sequence[int]) -> int:
    """0 below the first threshold, 1..3 at or above each tier (100 / 500 / 1000).

    The lower two tiers alert strictly above their threshold, the top one at it;
    the status page colours by the same rule so that both always agree.
    """
    t1, t2, t3 = thresholds
    if depth >= t3:
        return 3
    if depth > t2:
        return 2
    if depth > t1:
        return 1
    return 0


def select_queues(
    configured: Sequence[str], discovered: Iterable[str], max_queues: int
) -> tuple[list[str], int]:
    """Configured queues always, then discovered ones in name order up to the cap.

    Returns the queues to read and how many discovered queues the cap dropped.
    """
    chosen = list(dict.fromkeys(configured))
    seen = set(chosen)
    extra = sorted(q for q in set(discovered) if q not in seen)
    room = max(0, max_queues - len(chosen))
    return chosen + extra[:room], max(0, len(extra) - room)


def count_unacked(tags: Iterable[str], routes: Mapping[str, str]) -> Counter[str]:
    """In-flight messages per queue, from the unacked tags and the tag -> queue cache."""
    return Counter(routes[t] for t in tags if t in routes)


def route_of(exchange: str, routing_key: str, bindings: Mapping[tuple[str, str], str]) -> str:
    """The queue a message was delivered from: by binding, else by routing key.

    With Celery's default direct exchanges the routing key is the queue name.
    """
    return bindings.get((exchange, routing_key), routing_key)


def build_queue_stats(
    queues: Sequence[str],
    configured: Mapping[str, str],
    steps: Sequence[int],
    lists: Mapping[tuple[str, int], ListRead],
    unacked: Mapping[str, int],
    ages: Mapping[str, float],
    memory: Mapping[str, int],
    deployments: Mapping[str, Deployment] | None,
) -> tuple[QueueStats, ...]:
    """Assemble per-queue stats; `configured` maps queue -> deployment name."""
    out = []
    for q in queues:
        per_step = {s: lists[(q, s)].length for s in steps if (q, s) in lists}
        existing = {s: n for s, n in per_step.items() if n > 0}
        dep_name = configured.get(q)
        dep = deployments.get(dep_name) if (deployments is not None and dep_name) else None
        out.append(
            QueueStats(
                queue=q,
                waiting=sum(per_step.values()),
                priority_lengths=existing,
                unacked=int(unacked.get(q, 0)),
                oldest_age_seconds=float(ages.get(q, 0.0)),
                memory_bytes=int(memory.get(q, 0)),
                configured=q in configured,
                deployment=dep_name,
                replicas=dep.replicas if dep else None,
                ready_replicas=dep.ready_replicas if dep else None,
            )
        )
    return tuple(out)


class SnapshotSource(Protocol):
    """Where a snapshot comes from: the seam between observing and deciding.

    `exporter.collect.InProcessSource` reads Redis and the Deployment cache in this
    process; the autoscaler sidecar can instead read the exporter's /api/v1/snapshot.
    `collect()` never raises for a backend that is down: it returns a snapshot that
    says so (`broker_up` false, an error string).
    """

    def collect(self) -> Snapshot: ...

    def stop(self) -> None: ...
