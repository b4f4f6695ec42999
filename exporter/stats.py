"""Pure maths over queue statistics: which queues to read, their tier, their stats.

Free of I/O and of any broker's layout, so it is tested exhaustively
(tests/exporter/test_snapshot.py): the snapshot source picks the queues it reads with
`select_queues`, the status page colours depths with `tier`; `build_queue_stats`
assembles QueueStats from plain per-list readings, and `IncrementalStats` from a
broker reader's successive reads, rebuilding only what changed; `expected_finish` says
when a batch with a deadline would be done at its pace.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

from exporter.broker.protocol import BrokerRead, QueueRead
from exporter.snapshot import Deployment, QueueStats, Snapshot

# Per queue: unacked, memory, scheduled, overdue, consumers (None: not counted).
_Counts = tuple[int, int, int, int, int | None]


class ListRead(NamedTuple):
    """One priority list as read from Redis: its length and the tags at both ends.

    Tuples, not dataclasses: thousands are built per scrape and tuples build fastest.
    """

    length: int
    tail_tag: str | None = None  # the oldest message (consumers BRPOP the tail)
    head_tag: str | None = None  # the newest message (producers LPUSH the head)


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


class IncrementalStats:
    """QueueStats from successive broker reads, rebuilding only the queues whose inputs
    changed: with thousands of mostly idle queues, a scrape then costs new ages only.
    A fresh instance builds the very same stats (tests/exporter/broker/redis/test_reader.py,
    test_incremental_collection_equals_a_fresh_one). Not thread-safe: one collection at
    a time."""

    def __init__(
        self, configured: Mapping[str, str], watched: Mapping[str, str] | None = None
    ) -> None:
        self.configured = configured  # the batches: queue -> deployment name
        # Every queue whose Deployment is exported (batches and other_queues).
        self.watched = configured if watched is None else watched
        # Per queue: the inputs and the stats of the last build.
        self._prev: dict[str, tuple[QueueRead, _Counts, Deployment | None, QueueStats]] = {}
        self._prev_names: Sequence[str] = []
        self._prev_inputs: tuple[object, ...] = (None, None, None, None, None, None)
        # Changes whenever anything but the ages changed (Snapshot.generation).
        self.generation = 0

    def build(
        self, read: BrokerRead, now: float, by_name: Mapping[str, Deployment] | None
    ) -> tuple[QueueStats, ...]:
        """QueueStats per queue of `read` at `now` (ages), with `by_name` the cluster's
        Deployments by name (None: no cluster); bumps `generation` when anything but
        the ages changed."""
        inputs = (read.unacked, read.memory, read.scheduled, read.overdue, read.consumers, by_name)
        same = (
            not read.changed
            and read.queues == self._prev_names
            and all(a is b for a, b in zip(inputs[:5], self._prev_inputs[:5], strict=True))
            and by_name == self._prev_inputs[5]
        )
        self._prev_inputs = inputs
        if same:
            # Only the clock moved (the common case for idle batches): new ages only.
            out = []
            for name, r in zip(read.queues, read.reads, strict=True):
                qs = self._prev[name][3]
                if r.waiting:
                    qs = _new_tuple(QueueStats, (*qs[:4], age_of(r, now), *qs[5:]))
                out.append(qs)
            return tuple(out)
        prev, new = self._prev, {}
        configured, watched = self.configured, self.watched
        unacked_of, memory_of = read.unacked.get, read.memory.get
        scheduled, overdue, consumers = read.scheduled, read.overdue, read.consumers
        changed = list(read.queues) != self._prev_names
        out = []
        for name, r in zip(read.queues, read.reads, strict=True):
            unacked = unacked_of(name, 0)
            memory = memory_of(name, 0)
            # Absent from a broker that counts them: not reported yet, unknown.
            subscribed = consumers.get(name) if consumers is not None else None
            # Usually both empty: no lookups then.
            counts = (
                unacked,
                memory,
                scheduled.get(name, 0) if scheduled else 0,
                overdue.get(name, 0) if overdue else 0,
                subscribed,
            )
            dep_name = watched.get(name)
            dep = by_name.get(dep_name) if (by_name is not None and dep_name) else None
            age = age_of(r, now)
            p = prev.get(name)
            if p is not None and p[0] is r and p[1] == counts and p[2] is dep:
                qs = p[3]
                if r.waiting:  # only the age moved: a copy with the new age
                    qs = _new_tuple(QueueStats, (*qs[:4], age, *qs[5:]))
            else:
                qs = QueueStats(
                    queue=name,
                    waiting=r.waiting,
                    priority_lengths=r.priority_lengths,
                    unacked=unacked,
                    oldest_age_seconds=age,
                    memory_bytes=memory,
                    configured=name in configured,
                    deployment=dep_name,
                    replicas=dep.replicas if dep else None,
                    ready_replicas=dep.ready_replicas if dep else None,
                    scheduled=counts[2],
                    overdue=counts[3],
                    consumers=subscribed,
                )
                if p is None or p[3][:4] + p[3][5:] != qs[:4] + qs[5:]:
                    changed = True
            new[name] = (r, counts, dep, qs)
            out.append(qs)
        self._prev, self._prev_names = new, read.queues
        if changed:
            self.generation += 1
        return tuple(out)


_new_tuple = tuple.__new__


def age_of(r: QueueRead, now: float) -> float | None:
    """Seconds since the queue's oldest waiting message was first seen (or published);
    0 for an empty queue; None when the broker cannot date it (`QueueRead.age_known`)."""
    if not r.waiting:
        return 0.0
    seen = r.oldest_seen
    if seen is None:
        return 0.0 if r.age_known else None
    return now - seen if now > seen else 0.0


def expected_finish(snap: Snapshot, queue: str) -> float | None:
    """When the batch `queue`, whose claim has a deadline, would be done at its current
    pace (unix seconds): the snapshot's time plus the ETA (exporter/progress.py); inf
    while work is left and nothing drains or the pace is unknown; None without a
    deadline or with nothing left."""
    claim = snap.claims.get(queue)
    if claim is None or claim.finish_by is None:
        return None
    p = snap.progress.get(queue)
    if p is not None and p.eta_seconds == 0:
        return None
    if p is None or p.eta_seconds is None:
        q = snap.queue(queue)
        return math.inf if q is not None and q.work > 0 else None
    return snap.taken_at + p.eta_seconds
