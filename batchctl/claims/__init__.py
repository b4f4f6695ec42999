"""Claims: who is using which batch, why, and until when (the spreadsheet, in a store).

One home for the record (`record`), its history (`history`), the rules (`rules`), the
store's errors (`errors`) and how claims read (`text`). The package itself is pure and
light (the policy imports it): the store's protocol is `batchctl.claims.store`, a store
that talks to a backend is its own module (`batchctl.claims.redis_store`), and
`batchctl.claims.service.store_for` builds the configured one.
"""

from batchctl.claims.errors import StoreError, StoreFault, StoreRefused, StoreUnavailable
from batchctl.claims.history import KINDS, ClaimEvent, last_per_batch
from batchctl.claims.record import KEY, Claim, Override, claim_key
from batchctl.claims.rules import (
    ClaimConflict,
    ClaimRefused,
    Outcome,
    Refused,
    Work,
    WorkLeft,
    decide_claim,
    decide_release,
)
from batchctl.claims.text import claim_summary, describe_expiry, describe_state

__all__ = [
    "KEY",
    "KINDS",
    "Claim",
    "ClaimConflict",
    "ClaimEvent",
    "ClaimRefused",
    "Outcome",
    "Override",
    "Refused",
    "StoreError",
    "StoreFault",
    "StoreRefused",
    "StoreUnavailable",
    "Work",
    "WorkLeft",
    "claim_key",
    "claim_summary",
    "decide_claim",
    "decide_release",
    "describe_expiry",
    "describe_state",
    "last_per_batch",
]
