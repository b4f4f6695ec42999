"""Claims as people read them: expiry and one-line summaries (CLI, status page, logs)."""

from __future__ import annotations

from batchctl.claims.record import Claim
from batchctl.units import format_duration


def describe_expiry(claim: Claim, now: float) -> str:
    left = claim.remaining(now)
    if left > 0:
        return f"expires in {format_duration(left)}"
    return f"expired {format_duration(-left)} ago"


def describe_state(claim: Claim, now: float) -> str:
    """'draining for 5m' / 'scaled to 3 by alice for 20m' / '' for a plain claim."""
    parts = []
    if claim.draining_since is not None:
        parts.append(f"draining for {format_duration(now - claim.draining_since)}")
    o = claim.active_override(now)
    if o is not None:
        parts.append(f"scaled to {o.replicas} by {o.by} for {format_duration(o.until - now)}")
    return ", ".join(parts)


def claim_summary(claim: Claim | None, now: float) -> str:
    """'alice (reindex), expires in 3h59m' or '' when free."""
    if claim is None:
        return ""
    purpose = f" ({claim.purpose})" if claim.purpose else ""
    state = describe_state(claim, now)
    return f"{claim.holder_shown}{purpose}, {describe_expiry(claim, now)}" + (
        f", {state}" if state else ""
    )
