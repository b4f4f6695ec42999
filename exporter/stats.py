"""Pure maths over queue statistics: which queues to read, their tier, their stats.

Free of I/O and of any broker's layout, so it is tested exhaustively
(tests/exporter/test_snapshot.py): the snapshot source picks the queues it reads with
`select_queues`, the status page colours depths with `tier`, and `build_queue_stats`
assembles QueueStats from plain per-list readings (the reference the incremental
assembly in exporter/collect.py must agree with).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

from exporter.snapshot import Deployment, QueueStats


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
