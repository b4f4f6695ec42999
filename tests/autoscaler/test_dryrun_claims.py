"""dry-run's claim keeper writes nothing and says what it would do once per claim, not
at every tick (the claim it would end stays there)."""

from __future__ import annotations

from structlog.testing import capture_logs

from autoscaler.runtime import DryRunClaims
from batchctl.claims import Claim

NOW = 1_800_000_000.0


def test_each_would_be_write_is_said_once_per_claim() -> None:
    keeper = DryRunClaims()
    old = Claim("batch1", "alice", "p", "", NOW - 600, NOW - 60)
    new = Claim("batch1", "bob", "p", "", NOW - 10, NOW - 5)
    with capture_logs() as logs:
        for tick in range(5):
            keeper.note_expired("batch1", old, NOW + tick)
            keeper.end_drain("batch1", old, NOW + tick, "done")
        keeper.note_expired("batch1", new, NOW + 9)  # another claim: said again
    assert [(e["event"], e["holder"]) for e in logs] == [
        ("dry run: would record the expiry", "alice"),
        ("dry run: would end the drained claim", "alice"),
        ("dry run: would record the expiry", "bob"),
    ]
