"""The dry-run backend: decides and reports, changes nothing."""

from __future__ import annotations

from collections.abc import Mapping

from batchctl.log import get_logger

log = get_logger("batchctl.autoscaler")


class DryRunBackend:
    """Replicas are whatever the snapshot says; a change is only logged."""

    name = "dry-run"

    def observed(self) -> Mapping[str, tuple[int, int]] | None:
        return None

    def set_replicas(self, queue: str, n: int) -> None:
        log.info("dry run: would scale", queue=queue, replicas=n)

    def close(self) -> None:
        pass
