"""The pure adapter from the exporter's Snapshot to the policy's observations."""

from __future__ import annotations

import math
from typing import Any

import pytest

from autoscaler.observations import observations
from autoscaler.policy import GuardResult, GuardStatus
from batchctl.claims import Claim
from batchctl.config import AutoscalerConfig, BatchConfig, Config
from exporter.snapshot import Deployment, QueueStats, Snapshot

NOW = 1_000.0
CFG = Config(
    batches=(
        BatchConfig(queue="batch0", deployment="celery-batch0"),
        BatchConfig(queue="batch1", deployment="celery-batch1"),
    ),
    autoscaler=AutoscalerConfig(stale_after_seconds=60),
)
GUARDS = [GuardResult("db", GuardStatus.HEALTHY)]


def held_by(holder: str, expires: float) -> Claim:
    return Claim("batch0", holder, "", "", 0.0, expires)


def stats(queue: str, **kw: Any) -> QueueStats:
    base: dict[str, Any] = dict(
        queue=queue,
        waiting=120,
        priority_lengths={0: 100, 9: 20},
        unacked=16,
        oldest_age_seconds=42.0,
        memory_bytes=0,
        configured=True,
        deployment=f"celery-{queue}",
        replicas=3,
        ready_replicas=2,
    )
    base.update(kw)
    return QueueStats(**base)


def snap(*queues: QueueStats, **kw: Any) -> Snapshot:
    base: dict[str, Any] = dict(
        taken_at=NOW - 5, duration_seconds=0.01, broker_up=True, kubernetes_up=True, queues=queues
    )
    base.update(kw)
    return Snapshot(**base)


def test_fields_come_from_the_snapshot() -> None:
    claim = Claim("batch0", "alice", "reindex", "", since=0.0, expires=NOW + 60)
    got = observations(snap(stats("batch0"), stats("batch1")), CFG, {"batch0": claim}, GUARDS, NOW)
    assert [o.queue for o in got] == ["batch0", "batch1"]
    o = got[0]
    # Waiting counts every priority list; in flight is the unacked count.
    assert (o.waiting, o.in_flight, o.oldest_age_seconds) == (120, 16, 42.0)
    assert (o.replicas, o.ready_replicas) == (3, 2)
    assert o.claim == claim
    assert o.guards == tuple(GUARDS) and o.data_ok
    assert got[1].claim is None


def test_policy_claims_pass_through() -> None:
    info = held_by("bob", math.inf)
    (o, _) = observations(snap(stats("batch0"), stats("batch1")), CFG, {"batch0": info}, [], NOW)
    assert o.claim is info


@pytest.mark.parametrize(
    ("name", "snapshot"),
    [
        ("broker unreachable", snap(stats("batch0"), broker_up=False)),
        ("61s old (stale after 60s)", snap(stats("batch0"), taken_at=NOW - 61)),
        ("from the future", snap(stats("batch0"), taken_at=NOW + 1)),
        ("queue batch0 not in the snapshot", snap()),
        # RabbitMQ lists the queue, without figures until its first statistics.
        ("queue batch0: figures not published yet", snap(queues_unpublished=("batch0",))),
    ],
)
def test_missing_data_holds_and_says_why(name: str, snapshot: Snapshot) -> None:
    (o, _) = observations(snapshot, CFG, {}, [], NOW)
    assert not o.data_ok
    assert name in o.why


@pytest.mark.parametrize(
    ("kubernetes_up", "why"),
    [
        (True, "Deployment celery-batch0 not found"),
        (False, "Kubernetes API unreachable"),
        (None, "Kubernetes is disabled"),
    ],
)
def test_unknown_replicas_are_their_own_cause(kubernetes_up: bool | None, why: str) -> None:
    s = snap(stats("batch0", replicas=None, ready_replicas=None), kubernetes_up=kubernetes_up)
    (o, _) = observations(s, CFG, {}, [], NOW)
    assert o.data_ok and not o.replicas_known
    assert why in o.why


def test_deployments_map_when_queue_stats_lack_replicas() -> None:
    s = snap(
        stats("batch0", replicas=None, ready_replicas=None),
        deployments={"batch0": Deployment("celery-batch0", 4, 4)},
    )
    (o, _) = observations(s, CFG, {}, [], NOW)
    assert (o.replicas, o.ready_replicas, o.data_ok) == (4, 4, True)


def test_local_backend_replicas_override() -> None:
    (o, _) = observations(snap(stats("batch0")), CFG, {}, [], NOW, replicas={"batch0": (1, 0)})
    assert (o.replicas, o.ready_replicas) == (1, 0)
