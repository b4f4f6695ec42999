"""Where replicas live, behind one Protocol: Kubernetes, local worker processes, or nowhere.

A backend is a thin shell around the pure policy: it reports replicas when it knows
better than the snapshot, and applies a replica count. `kubernetes` patches the
Deployment's scale subresource, `local` starts and warm-stops `celery worker`
processes on this machine, `dry-run` changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class ScaleNote:
    """Why a replica count changes, for the backend's own record (a Kubernetes Event)."""

    current: int
    desired: int
    reason: str  # batchctl.reasons.Reason value
    detail: str = ""
    holder: str | None = None  # the claim's holder, when the batch is claimed

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
        """Apply `n` replicas for the batch `queue`; raise on failure (nothing applied)."""
        ...

    def other_controllers(self) -> Mapping[str, Sequence[str]] | None:
        """Deployment -> the other controllers that scale it (an HPA, a KEDA
        ScaledObject: autoscaler/backends/controllers.py); None when the backend cannot
        tell (local workers, dry-run). Raises when the lists fail."""
        ...

    def close(self) -> None: ...
