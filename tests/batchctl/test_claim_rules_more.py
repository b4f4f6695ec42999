"""What the claim rules say and refuse, beyond test_claim_rules.py's tables."""

from __future__ import annotations

from batchctl.claims import Claim
from batchctl.claims.rules import decide_claim

NOW = 1_800_000_000.0
HOUR = 3600.0
LIVE = Claim("batch1", "alice", "reindex", "#infra", NOW - HOUR, NOW + HOUR)


def test_renewing_says_when_the_claim_was_due() -> None:
    out = decide_claim(LIVE, "batch1", "alice", None, None, 7 * 24 * HOUR, NOW)
    assert out.kind == "extended"
    assert out.event is not None and out.event.detail == "for 7d; it was due in 1h"
