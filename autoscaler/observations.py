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
    policy then holds with `no_data`, saying why) when the broker is down, the claims
    cannot be read from their store (`Snapshot.claims_error`), the snapshot
    is older than `autoscaler.stale_after_seconds` (two ticks by default) or from the
    future, or the queue is not in it (its figures not published yet, or not read); the
    replica count as unknown (`replicas_unknown`) when the snapshot has no Deployment
    for the batch. With Celery's events connected,
    each observation also carries the tasks running now and the completions so far.
    """
    age = now - snapshot.taken_at
    limit = config.autoscaler.stale_limit_seconds
    why = ""
    if not snapshot.broker_up:
        why = f"broker unreachable: {snapshot.broker_error or 'no answer'}"
    elif snapshot.claims_error is not None:
        why = f"claims unknown: {snapshot.claims_error}"
    elif age < 0:
        why = f"snapshot from the future ({-age:.0f}s): clocks disagree"
    elif age > limit:
        why = f"snapshot {age:.0f}s old (stale after {limit:g}s)"
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
        batch_why = why or ("" if q is not None else _missing(snapshot, batch.queue))
        known = desired is not None
        if not batch_why and not known:
            batch_why = _replicas_why(snapshot, batch.deployment)
        # Running tasks and completions by the events, while they arrive; without them
        # (off, not connected, or workers without -E) the policy works as it always did.
        activity = snapshot.activity(batch.queue)
        completed = None
        if activity is not None and activity.task_events:
            completed = activity.completed
        out.append(
            BatchObservation(
                queue=batch.queue,
                waiting=q.waiting if q is not None else 0,
                in_flight=q.unacked if q is not None else 0,
                # Unknown (RabbitMQ without timestamps) is passed as 0: the rule that
                # reads it (from_zero_interval) then holds by the interval alone, which
                # config check keeps a minute below alerts.no_consumers_for.
                oldest_age_seconds=(q.oldest_age_seconds or 0.0) if q is not None else 0.0,
                replicas=desired if desired is not None else 0,
                ready_replicas=ready if ready is not None else 0,
                claim=claims.get(batch.queue),
                guards=tuple(guards),
                data_ok=not (why or q is None),
                replicas_known=known,
                why=batch_why,
                active=activity.active if activity is not None else 0,
                completed=completed,
                scheduled=q.scheduled if q is not None else 0,
                stranded=snapshot.stranded(batch.queue),
            )
        )
    return out


def _missing(snapshot: Snapshot, queue: str) -> str:
    if queue in snapshot.queues_unpublished:
        # RabbitMQ lists it, without figures until its first statistics (a few seconds).
        return f"queue {queue}: figures not published yet"
    return f"queue {queue} not in the snapshot"


def _replicas_why(snapshot: Snapshot, deployment: str) -> str:
    if snapshot.kubernetes_up is None:
        return "no replica count: Kubernetes is disabled and the backend knows none"
    if snapshot.kubernetes_up is False:
        return f"Kubernetes API unreachable: {snapshot.kubernetes_error or 'no answer'}"
    return f"Deployment {deployment} not found"
