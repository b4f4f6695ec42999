"""Claims as people read them: expiry and one-line summaries (CLI, status page, logs)."""

from __future__ import annotations

from batchctl.claims.history import ClaimEvent
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


# Each kind of claim event as a Kubernetes Event on the batch's Deployment: its reason
# (CamelCase, as Kubernetes writes them) and type (Warning for what someone should see).
EVENT_REASONS = {
    "claimed": ("Claimed", "Normal"),
    "extended": ("ClaimExtended", "Normal"),
    "shortened": ("ClaimShortened", "Normal"),
    "taken_over": ("ClaimTakenOver", "Normal"),
    "released": ("Released", "Normal"),
    "draining": ("Draining", "Normal"),
    "drained": ("Drained", "Normal"),
    "forced": ("ClaimForced", "Warning"),
    "expired": ("ClaimExpired", "Warning"),
    "scaled": ("ManualScale", "Normal"),
    "migrated": ("ClaimMigrated", "Normal"),
}
_VERBS = {"taken_over": "took over", "scaled": "scaled", "forced": "forced"}


def event_story(e: ClaimEvent) -> str:
    """One claim event as a sentence for people (a Kubernetes Event's message):
    'alice claimed batch1 (reindex dockets); for 8h'."""
    verb = _VERBS.get(e.kind, e.kind)
    whose = "" if e.who == e.holder else f" {e.holder}'s claim on"
    purpose = f" ({e.purpose})" if e.purpose else ""
    detail = f": {e.detail}" if e.detail else ""
    return f"batchctl: {e.who_shown} {verb}{whose} {e.queue}{purpose}{detail}"
