"""The dry-run backend: decides and reports, changes nothing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from autoscaler.backends import ScaleNote
from autoscaler.backends.ranking import Replica
from batchctl.log import get_logger
from exporter.events.workload import WorkerLoad

log = get_logger("batchctl.autoscaler")


class DryRunBackend:
    """A change is only logged. Replicas are the snapshot's (real Deployments), or, with
    `track` (no Kubernetes to read them from), counts of its own that start at
    `assume_replicas` and follow its own decisions, so "what would it do" is answered
    tick after tick."""

    name = "dry-run"

    def __init__(
        self, queues: Sequence[str] = (), *, track: bool = False, assume_replicas: int = 0
    ) -> None:
        self.track = track
        self.replicas = {q: assume_replicas for q in queues}

    def observed(self) -> Mapping[str, tuple[int, int]] | None:
        if not self.track:
            return None
        return {q: (n, n) for q, n in self.replicas.items()}

    def set_replicas(self, queue: str, n: int, note: ScaleNote | None = None) -> None:
        log.info(
            "dry run: would scale",
            queue=queue,
            replicas=n,
            reason=note.reason if note else None,
            detail=note.detail if note else None,
        )
        if self.track:
            self.replicas[queue] = n

    def other_controllers(self) -> None:
        return None  # no other controller can scale these replicas

    def busy_map(
        self, queue: str, workers: Sequence[WorkerLoad], selector: Mapping[str, str]
    ) -> list[Replica] | None:
        return None  # no replicas of its own: the policy scales in without a busy map

    def waiting(self, queue: str, note: ScaleNote) -> None:
        log.info("dry run: a step down waits for an idle replica", queue=queue, detail=note.detail)

    def close(self) -> None:
        pass
