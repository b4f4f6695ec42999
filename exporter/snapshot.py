"""The snapshot: one consistent reading of the broker and the cluster, as data.

The contract between the exporter and the autoscaler sidecar: `Snapshot.to_json` is what
/api/v1/snapshot serves and `Snapshot.from_json` what the sidecar reads back, so this
module holds data and its (de)serialisation only, and is checked with `mypy --strict`.
The broker reader (exporter/broker/) and the Deployment cache (exporter/kube/) feed it
through exporter/collect.py; metrics, the status page, the JSON API and the autoscaler
all consume the same `Snapshot`. The maths over it is in exporter/stats.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, NamedTuple, Protocol

from batchctl.claims import Claim
from exporter.events.model import EventsView, QueueActivity
from exporter.progress import Progress


@dataclass(frozen=True, slots=True)
class Deployment:
    name: str
    replicas: int  # spec.replicas: what is asked for
    ready_replicas: int  # status.readyReplicas: what is consuming
    # spec.selector.matchLabels, sorted: how the autoscaler lists the Deployment's pods
    # (for the busy map) without reading the Deployment itself.
    selector: tuple[tuple[str, str], ...] = ()


class QueueStats(NamedTuple):
    queue: str
    waiting: int
    priority_lengths: Mapping[int, int]  # only lists that exist (length > 0)
    unacked: int
    # None: unknown (a broker that cannot date its messages, and no events to tell).
    oldest_age_seconds: float | None
    memory_bytes: int
    configured: bool
    deployment: str | None = None
    replicas: int | None = None
    ready_replicas: int | None = None
    # Consumers subscribed to the queue, where the broker counts them (RabbitMQ); None:
    # it does not (Redis).
    consumers: int | None = None
    # Of `unacked`: held by a worker for an ETA still in the future (Celery's ETA and
    # countdown tasks), and delivered longer ago than broker.visibility_timeout (a
    # running worker restores those to the queue). Disjoint; 0 from older exporters.
    scheduled: int = 0
    overdue: int = 0

    @property
    def work(self) -> int:
        """Waiting plus in flight: zero only when the batch has truly nothing to do."""
        return self.waiting + self.unacked


@dataclass(frozen=True)
class BrokerDurability:
    """What the exporter knows of the broker's persistence: whether claims kept there
    survive a restart (exporter/broker/redis/durability.py finds out)."""

    durable: bool | None  # None: unknown (CONFIG refused and AOF off)
    detail: str  # e.g. "no AOF, no RDB save points"
    run_id: str = ""
    # Claims that vanished in a restart that lost the data: queue -> holder.
    lost_claims: Mapping[str, str] = field(default_factory=dict)
    lost_at: float | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "durable": self.durable,
            "detail": self.detail,
            "run_id": self.run_id,
            "lost_claims": dict(self.lost_claims),
            "lost_at": self.lost_at,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BrokerDurability:
        durable = data.get("durable")
        lost_at = data.get("lost_at")
        return cls(
            durable=None if durable is None else bool(durable),
            detail=str(data.get("detail", "")),
            run_id=str(data.get("run_id", "")),
            lost_claims={str(q): str(h) for q, h in (data.get("lost_claims") or {}).items()},
            lost_at=None if lost_at is None else float(lost_at),
        )


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
    # Queues the broker lists without figures yet (RabbitMQ, before its first statistics
    # of a queue): not in `queues`, their figures unknown (a batch among them is held).
    queues_unpublished: tuple[str, ...] = ()
    # Queues (or binding members) left out because of what they are, by reason.
    queues_skipped: Mapping[str, int] = field(default_factory=dict)
    # Configured batches' Deployments by queue: known even while the broker is down.
    deployments: Mapping[str, Deployment] = field(default_factory=dict)
    # Changes whenever anything but the ages changed since the previous snapshot of the
    # same collector; None when unknown. Lets the renderer reuse unchanged families.
    generation: int | None = None
    # Claim records of the configured batches (read in the same round trip), by queue.
    claims: Mapping[str, Claim] = field(default_factory=dict)
    # Why the claims could not be read from the claim store (`claims.store` other than
    # the broker's Redis); None: they were. While set, `claims` is empty and unknown.
    claims_error: str | None = None
    # Celery's task and worker events (exporter/events/); None: events are off.
    events: EventsView | None = None
    # Pace, failures and ETA of the configured batches (exporter/progress.py), by queue.
    progress: Mapping[str, Progress] = field(default_factory=dict)
    # Whether the broker keeps its data across a restart, and claims lost in one
    # (BrokerDurability); None: not checked yet.
    durability: BrokerDurability | None = None
    # The broker's resource alarms ("memory", "disk") -> raised now, where it has them
    # (RabbitMQ: every publisher is blocked while one is raised); {}: none known.
    broker_alarms: Mapping[str, bool] = field(default_factory=dict)
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

    def stranded(self, name: str) -> int:
        """In-flight messages of the queue that nothing will deliver again: delivered
        longer ago than the visibility timeout (`overdue`) while no live worker consumes
        the queue, as far as anything tells (no ready replica of its Deployment, and no
        worker of it alive by the events). A live worker restores them (kombu's
        restore_visible, about every 100 s), so with one they are not stranded."""
        q = self.queue(name)
        if q is None or q.overdue == 0:
            return 0
        if q.ready_replicas:
            return 0
        activity = self.activity(name)
        if activity is not None and activity.workers:
            return 0
        return q.overdue

    def to_json(self) -> dict[str, object]:
        skip = ("_index", "queues", "generation", "claims", "events", "progress", "durability")
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in skip}
        out["durability"] = None if self.durability is None else self.durability.to_json()
        out["claims"] = {q: c.to_json(self.taken_at) for q, c in self.claims.items()}
        out["events"] = None if self.events is None else self.events.to_json()
        out["progress"] = {q: p.to_json() for q, p in self.progress.items()}
        out["deployments"] = {
            q: asdict(d) | {"selector": dict(d.selector)} for q, d in self.deployments.items()
        }
        out["broker_alarms"] = dict(self.broker_alarms)
        queues = []
        for q in self.queues:
            row = q._asdict()
            row["priority_lengths"] = {str(k): v for k, v in q.priority_lengths.items()}
            row["work"] = q.work
            row["stranded"] = self.stranded(q.queue)
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
            str(q): Deployment(
                str(d["name"]),
                int(d["replicas"]),
                int(d["ready_replicas"]),
                tuple(sorted((str(k), str(v)) for k, v in (d.get("selector") or {}).items())),
            )
            for q, d in (data.get("deployments") or {}).items()
        }
        claims = {str(q): Claim.from_json(str(q), c) for q, c in (data.get("claims") or {}).items()}
        events = data.get("events")
        progress = {str(q): Progress.from_json(p) for q, p in (data.get("progress") or {}).items()}
        skip = {"queues", "deployments", "claims", "generation", "_index", "events", "progress"}
        skip.update(("durability", "broker_alarms", "queues_unpublished"))
        durability = data.get("durability")
        alarms = {str(k): bool(v) for k, v in (data.get("broker_alarms") or {}).items()}
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
            broker_alarms=alarms,
            queues_unpublished=tuple(str(q) for q in data.get("queues_unpublished") or ()),
        )


class SnapshotSource(Protocol):
    """Where a snapshot comes from: the seam between observing and deciding.

    `exporter.collect.InProcessSource` reads the broker and the Deployment cache in this
    process; the autoscaler sidecar can instead read the exporter's /api/v1/snapshot.
    `collect()` never raises for a backend that is down: it returns a snapshot that
    says so (`broker_up` false, an error string).
    """

    def collect(self) -> Snapshot: ...

    def stop(self) -> None: ...
