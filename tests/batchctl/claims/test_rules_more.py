"""What the claim rules say and refuse, beyond test_claim_rules.py's tables."""

from __future__ import annotations

import pytest

from batchctl.claims import Claim, ClaimRefused, Work, decide_release
from batchctl.claims.rules import decide_claim

NOW = 1_800_000_000.0
HOUR = 3600.0
LIVE = Claim("batch1", "alice", "reindex", "#infra", NOW - HOUR, NOW + HOUR)


def test_renewing_says_when_the_claim_was_due() -> None:
    out = decide_claim(LIVE, "batch1", "alice", None, None, 7 * 24 * HOUR, NOW)
    assert out.kind == "extended"
    assert out.event is not None and out.event.detail == "for 7d; it was due in 1h"


def test_drain_and_force_on_ones_own_claim_contradict() -> None:
    with pytest.raises(ClaimRefused, match="--drain and --force contradict"):
        decide_release(LIVE, "alice", True, NOW, work=Work(5, 1), drain=True)
    with pytest.raises(ClaimRefused):
        decide_release(LIVE, "alice", True, NOW, work=Work(0, 0), drain=True)
    # On someone else's claim --force means "not mine": --drain --force drains theirs.
    out = decide_release(LIVE, "bob", True, NOW, work=Work(5, 1), drain=True, reason="away")
    assert out.kind == "draining" and "drained by bob (--force): away" in out.event.detail  # type: ignore[union-attr]


def test_a_deadline_past_max_ttl_names_a_fix_that_can_work() -> None:
    """A --ttl longer than claims.max_ttl is refused: the fix for a deadline beyond
    max_ttl is a nearer deadline (or a larger max_ttl), never that --ttl."""
    week = 7 * 24 * HOUR
    with pytest.raises(ClaimRefused) as e:
        decide_claim(None, "batch1", "alice", "p", None, 8 * HOUR, NOW, week,
                     finish_by=NOW + 9 * 24 * HOUR)  # fmt: skip
    assert "--ttl of at least 9d" not in str(e.value)
    assert "claims.max_ttl (7d)" in str(e.value)
    # Within max_ttl the --ttl it names is one the claim accepts.
    with pytest.raises(ClaimRefused, match="give a --ttl of at least 3d"):
        decide_claim(None, "batch1", "alice", "p", None, 8 * HOUR, NOW, week,
                     finish_by=NOW + 3 * 24 * HOUR)  # fmt: skip
    out = decide_claim(None, "batch1", "alice", "p", None, 3 * 24 * HOUR, NOW, week,
                       finish_by=NOW + 3 * 24 * HOUR)  # fmt: skip
    assert out.claim.finish_by == NOW + 3 * 24 * HOUR
