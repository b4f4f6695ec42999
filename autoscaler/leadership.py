"""Who may write: the role the loop asks before every change (autoscaler/leader.py elects
one on a Lease; without election the one process is the leader)."""

from __future__ import annotations

from typing import Protocol


class Leadership(Protocol):
    """Whether we may write, and the handover record (autoscaler/leader.py)."""

    def is_leader(self) -> bool: ...

    def read_state(self) -> str | None: ...

    def write_state(self, text: str) -> None: ...


class SoleLeader:
    """No election (one replica, or not on Kubernetes): always the leader, and the
    handover record lives in memory."""

    def __init__(self) -> None:
        self.text: str | None = None

    def is_leader(self) -> bool:
        return True

    def read_state(self) -> str | None:
        return self.text

    def write_state(self, text: str) -> None:
        self.text = text
