"""Where replicas live, behind one Protocol: Kubernetes, local worker processes, or nowhere.

A backend is a thin shell around the pure policy: it reports replicas when it knows
better than the snapshot, and applies a replica count. `kubernetes` patches the
Deployment's scale subresource, `local` starts and warm-stops `celery worker`
processes on this machine, `dry-run` changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol


class Backend(Protocol):
    name: str

    def observed(self) -> Mapping[str, tuple[int, int]] | None:
        """queue -> (desired, ready) when the backend knows better than the snapshot;
        None to use the snapshot's Deployments."""
        ...

    def set_replicas(self, queue: str, n: int) -> None:
        """Apply `n` replicas for the batch `queue`; raise on failure (nothing applied)."""
        ...

    def close(self) -> None: ...
