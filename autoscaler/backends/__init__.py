"""Where replicas live, behind one Protocol: Kubernetes, local worker processes, or nowhere.

A backend is a thin shell around the pure policy: it reports replicas when it knows
better than the snapshot, matches the busy map (Celery's events: the tasks each worker
runs and holds) to its replicas, and applies a replica count, stopping the idle
replicas first (autoscaler/backends/ranking.py). `kubernetes` patches the Deployment's
scale subresource (and, before a scale-down, each pod's pod-deletion-cost), `local`
starts and warm-stops `celery worker` processes on this machine, `dry-run` changes
nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from autoscaler.backends.ranking import Replica
from exporter.events.workload import WorkerLoad


@dataclass(frozen=True)
class ScaleNote:
    """Why a replica count changes, for the backend's own record (a Kubernetes Event)."""

    current: int
    desired: int
    reason: str  # batchctl.reasons.Reason value
    detail: str = ""
    holder: str | None = None  # the claim's holder, when the batch is claimed
    # The batch's replicas with their load, as `Backend.busy_map` matched them this tick:
    # a scale-down stops the idle ones first. None: no busy map (events off).
    replicas: tuple[Replica, ...] | None = None

    def message(self) -> str:
        claim = f"; claimed by {self.holder}" if self.holder else "; not claimed"
        detail = f" ({self.detail})" if self.detail else ""
        return (
            f"batchctl autoscaler: {self.current} -> {self.desired} replicas: "
            f"{self.reason}{detail}{claim}"
        )


class Backend(Protocol):
    name: str

    def observed(self) -> Mapping[str, tuple[int, int]] | None:
        """queue -> (desired, ready) when the backend knows better than the snapshot;
        None to use the snapshot's Deployments."""
        ...

    def set_replicas(self, queue: str, n: int, note: ScaleNote | None = None) -> None:
        """Apply `n` replicas for the batch `queue`; raise on failure (nothing applied).
        Going down with `note.replicas`, the idle ones are stopped first."""
        ...

    def busy_map(
        self, queue: str, workers: Sequence[WorkerLoad], selector: Mapping[str, str]
    ) -> list[Replica] | None:
        """The batch's replicas (not terminating), each with the load of the worker
        `workers` (the events' busy map) shows on it; None when the backend has no
        replicas of its own to match (dry-run). `selector` is the batch Deployment's
        spec.selector.matchLabels as the exporter saw it (the kubernetes backend lists
        pods with it). Raises when they cannot be listed."""
        ...

    def waiting(self, queue: str, note: ScaleNote) -> None:
        """A step down of `queue` waits for an idle replica (reason busy_workers): say so
        where people look (a Kubernetes Event on the Deployment, else the log)."""
        ...

    def other_controllers(self) -> Mapping[str, Sequence[str]] | None:
        """Deployment -> the other controllers that scale it (an HPA, a KEDA
        ScaledObject: autoscaler/backends/controllers.py); None when the backend cannot
        tell (local workers, dry-run). Raises when the lists fail."""
        ...

    def close(self) -> None: ...
