"""Who may write: the role the loop asks before every change (autoscaler/leader.py elects
one on a Lease; without election the one process is the leader).

No Kubernetes here: the loop, and every backend that never elects, import this module
alone.
"""

from __future__ import annotations

from typing import Protocol


class NotLeader(Exception):
    """This replica may not write: it does not hold the Lease (any more)."""


class Leadership(Protocol):
    """Whether we may write, the handover record, and the decisions the leader shares
    with its standbys (autoscaler/leader.py)."""

    @property
    def identity(self) -> str | None:
        """Who we are (the Lease holder's name when we lead), None when nobody asks."""
        ...

    def is_leader(self) -> bool: ...

    def read_state(self) -> str | None:
        """The handover record (autoscaler/handover.py) as stored; None: none yet."""
        ...

    def write_state(self, text: str) -> None:
        """Store the handover record; raises NotLeader when we may not write."""
        ...

    def publish_decisions(self, text: str) -> None:
        """Hand our latest decisions (batchctl.decisions.encode_compact) to the standbys."""
        ...

    def leader_decisions(self) -> str | None:
        """The leader's decisions as this replica last read them; None: none known."""
        ...

    def stop(self) -> None:
        """Stop competing (and hand the lead over); the process is shutting down."""
        ...


class SoleLeader:
    """No election (one replica, or not on Kubernetes): always the leader, the handover
    record lives in memory, and there is nobody to share decisions with."""

    identity: str | None = None

    def __init__(self) -> None:
        self.text: str | None = None

    def is_leader(self) -> bool:
        return True

    def read_state(self) -> str | None:
        return self.text

    def write_state(self, text: str) -> None:
        self.text = text

    def publish_decisions(self, text: str) -> None:
        """Nobody stands by: nothing to hand over."""

    def leader_decisions(self) -> str | None:
        return None  # we lead: our own decisions are served, never a copy

    def stop(self) -> None:
        """Nothing to give up."""
