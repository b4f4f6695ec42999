"""Which replicas a scale-down should stop: the busy map ranked (pure).

Celery's events tell the tasks each worker runs (`active`) and holds prefetched or
scheduled (`reserved`); the backend matches workers to its replicas (pods by name, local
worker processes by node name) into `Replica`s. A scale-down should stop the replicas
that hold least: the Kubernetes backend writes `deletion_cost` into each pod's
`controller.kubernetes.io/pod-deletion-cost` annotation, which the ReplicaSet controller
reads on scale-down (lower first, after its own ranking: pods not ready go first; best
effort, docs/design.md); the local backend and the simulator stop `stop_order`'s first.

Costs: 0 for an idle replica (nothing running or held), 1 for one whose load is not
known (no worker matched to it), and 2 + reserved + 1000 x running for a busy one, so
that a replica running a task goes only after every one that runs none.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

ANNOTATION = "controller.kubernetes.io/pod-deletion-cost"
# The annotation is an int32.
MAX_COST = 2**31 - 1
IDLE_COST = 0
UNKNOWN_COST = 1


@dataclass(frozen=True, slots=True)
class Replica:
    """One replica of a batch and its load by the busy map."""

    name: str  # the pod's name (Kubernetes) or the worker's node name (local)
    ready: bool
    active: int | None = None  # tasks running; None: no worker matched to it
    reserved: int | None = None  # tasks prefetched or scheduled (ETA), not started

    @property
    def known(self) -> bool:
        return self.active is not None

    @property
    def idle(self) -> bool:
        """Holds no work: not ready yet (no worker consuming), or a worker with nothing."""
        return not self.ready or (self.active == 0 and not self.reserved)


def deletion_cost(r: Replica) -> int:
    """The pod-deletion-cost for `r` (see the module docstring)."""
    if r.idle:
        return IDLE_COST
    if r.active is None:
        return UNKNOWN_COST
    return min(MAX_COST, 2 + (r.reserved or 0) + 1000 * r.active)


def stop_order(replicas: Iterable[Replica]) -> list[Replica]:
    """Replicas in the order a scale-down should stop them: not ready first, then by cost
    (idle, unknown, busy: fewest running, then fewest held); ties keep the given order."""
    return sorted(replicas, key=lambda r: (r.ready, deletion_cost(r)))


def idle_count(replicas: Sequence[Replica]) -> int | None:
    """Replicas that hold no work; None when the busy map knows none of the ready
    replicas (no events, or no worker matched): then nothing is known about any."""
    ready = [r for r in replicas if r.ready]
    if ready and not any(r.known for r in ready):
        return None
    return sum(1 for r in replicas if r.idle)


def tasks_on(replicas: Iterable[Replica]) -> int:
    """Tasks running on `replicas` (known ones): what stopping them interrupts."""
    return sum(r.active or 0 for r in replicas)
