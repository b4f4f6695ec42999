"""Claims as people read them: expiry and one-line summaries (CLI, status page, logs)."""

from __future__ import annotations

from batchctl.claims.record import Claim
from batchctl.units import format_duration


def describe_expiry(claim: Claim, now: float) -> str:
    left = claim.remaining(now)
    if left > 0:
        return f"expires in {format_duration(left)}"
    return f"expired {format_duration(-left)} ago"


def claim_summary(claim: Claim | None, now: float) -> str:
    """'alice (reindex), expires in 3h59m' or '' when free."""
    if claim is None:
        return ""
    purpose = f" ({claim.purpose})" if claim.purpose else ""
    return f"{claim.holder}{purpose}, {describe_expiry(claim, now)}"
