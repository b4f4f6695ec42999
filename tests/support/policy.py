"""Builders for the policy tests: observations, states, claims, guards and configs
around one instant `NOW`, and the table row (`Row`) that names the rule that decides."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from autoscaler.policy import Action, BatchObservation, BatchState, GuardResult, GuardStatus, Reason
from batchctl.claims import Claim, Override
from batchctl.config import AutoscalerConfig, BatchConfig, Config


def held_by(holder: str, expires: float) -> Claim:
    return Claim("batch0", holder, "", "", 0.0, expires)


NOW = 10_000.0
HELD = held_by("alice", NOW + 3600)
EXPIRED = held_by("alice", NOW - 1)
HEALTHY = GuardResult("db", GuardStatus.HEALTHY)
UNHEALTHY = GuardResult("db", GuardStatus.UNHEALTHY)
UNKNOWN = GuardResult("db", GuardStatus.UNKNOWN)
DRAINING = replace(HELD, draining_since=NOW - 60)
SHED = GuardResult("es", GuardStatus.UNHEALTHY, shed=True)
UNKNOWN_SHED = GuardResult("es", GuardStatus.UNKNOWN, shed=True)


def scaled(n: int, until: float = NOW + 600, expires: float = NOW + 3600) -> Claim:
    """A claim whose holder set `n` replicas with `batchctl scale` until `until`."""
    return replace(HELD, expires=expires, override=Override(n, until, "alice", "catch up", NOW))


def config(budget: int = 20, batches: int = 1, **batch: Any) -> Config:
    return Config(
        batches=tuple(
            BatchConfig(queue=f"batch{i}", deployment=f"celery-batch{i}", **batch)
            for i in range(batches)
        ),
        autoscaler=AutoscalerConfig(global_max_replicas=budget),
    )


def obs(**kw: Any) -> BatchObservation:
    base: dict[str, Any] = dict(
        queue="batch0",
        waiting=0,
        in_flight=0,
        oldest_age_seconds=0.0,
        replicas=0,
        ready_replicas=None,
        claim=HELD,
        guards=(HEALTHY,),
        data_ok=True,
    )
    base.update(kw)
    if base["ready_replicas"] is None:
        base["ready_replicas"] = base["replicas"]
    return BatchObservation(**base)


# A batch we have been scaling: the replicas are what we last asked for.
def ours(replicas: int, **kw: Any) -> BatchState:
    return BatchState(last_desired=replicas, last_seen_replicas=replicas, **kw)


@dataclass(frozen=True)
class Row:
    name: str
    step: str  # the rule of autoscaler.policy.PRECEDENCE that decides
    obs: BatchObservation
    want: tuple[int, Reason, Action]
    state: BatchState = field(default_factory=BatchState)
    cfg: dict[str, Any] = field(default_factory=dict)
