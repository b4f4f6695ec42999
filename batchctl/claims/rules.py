"""Who may claim, extend and release a batch: pure rules over `Claim` records.

The store (batchctl/claims/store.py) applies them under WATCH/MULTI, so two people
claiming the same batch at the same moment cannot both win.
"""

from __future__ import annotations

from batchctl.claims.record import Claim
from batchctl.claims.text import describe_expiry


class ClaimConflict(Exception):
    """The batch is held by someone else; `existing` says by whom and until when."""

    def __init__(self, existing: Claim, now: float, action: str = "claim") -> None:
        self.existing = existing
        self.now = now
        super().__init__(
            f"cannot {action} {existing.queue}: held by {existing.holder} "
            f"({describe_expiry(existing, now)})"
        )


def decide_claim(
    existing: Claim | None,
    queue: str,
    holder: str,
    purpose: str | None,
    contact: str | None,
    ttl_seconds: float,
    now: float,
) -> Claim:
    """The claim to store, or ClaimConflict when another holder's claim is still live.

    The same holder extends (keeping `since`, and purpose/contact when not given);
    anyone may take over an expired claim.
    """
    if not holder or holder != holder.strip() or "\n" in holder:
        raise ValueError(f"holder must be a non-empty name without spaces around it: {holder!r}")
    if not ttl_seconds > 0:
        raise ValueError(f"ttl must be positive, got {ttl_seconds}")
    if existing is not None and existing.holder != holder and not existing.expired(now):
        raise ClaimConflict(existing, now)
    extending = existing is not None and existing.holder == holder and not existing.expired(now)
    if extending:
        assert existing is not None
        return Claim(
            queue,
            holder,
            existing.purpose if purpose is None else purpose,
            existing.contact if contact is None else contact,
            existing.since,
            now + ttl_seconds,
        )
    return Claim(queue, holder, purpose or "", contact or "", now, now + ttl_seconds)


def decide_release(existing: Claim | None, holder: str, force: bool, now: float) -> bool:
    """Whether to delete the record: False if there is none; ClaimConflict if not yours."""
    if existing is None:
        return False
    if existing.holder != holder and not force:
        raise ClaimConflict(existing, now, action="release")
    return True
