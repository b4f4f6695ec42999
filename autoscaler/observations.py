"""The observation adapter: the exporter's Snapshot (+ claims + guards) -> the policy's input.

Pure: the live loop reads the snapshot, the claims and the guards, and passes `now`. One
observation per configured batch, always, so that a batch missing from the snapshot is
held (`data_ok=False`) rather than silently skipped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from autoscaler.policy import BatchObservation, GuardResult
from batchctl.claims import Claim
from batchctl.config import Config
from exporter.snapshot import Snapshot


def observations(
    snapshot: Snapshot,
    config: Config,
    claims: Mapping[str, Claim | None],
    guards: Sequence[GuardResult],
    now: float,
    replicas: Mapping[str, tuple[int, int]] | None = None,
) -> list[BatchObservation]:
    """One observation per configured batch.

    `replicas` (queue -> (desired, ready)) overrides the snapshot's Deployments, for the
    local backend whose workers are processes, not pods. Data counts as missing (the
    policy then changes nothing) when the broker is down, the snapshot is older than
    `autoscaler.stale_after_seconds` (two ticks by default; or from the future), the
    queue is not in it, or the replica count is unknown.
    """
    age = now - snapshot.taken_at
    fresh = snapshot.broker_up and 0 <= age <= config.autoscaler.stale_limit_seconds
    out = []
    for batch in config.batches:
        q = snapshot.queue(batch.queue)
        desired: int | None = None
        ready: int | None = None
        if replicas is not None and batch.queue in replicas:
            desired, ready = replicas[batch.queue]
        elif q is not None and q.replicas is not None:
            desired, ready = q.replicas, q.ready_replicas
        elif batch.queue in snapshot.deployments:
            dep = snapshot.deployments[batch.queue]
            desired, ready = dep.replicas, dep.ready_replicas
        ok = fresh and q is not None and desired is not None
        out.append(
            BatchObservation(
                queue=batch.queue,
                waiting=q.waiting if q is not None else 0,
                in_flight=q.unacked if q is not None else 0,
                oldest_age_seconds=q.oldest_age_seconds if q is not None else 0.0,
                replicas=desired if desired is not None else 0,
                ready_replicas=ready if ready is not None else 0,
                claim=claims.get(batch.queue),
                guards=tuple(guards),
                data_ok=ok,
            )
        )
    return out
