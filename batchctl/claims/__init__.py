"""Claims: who is using which batch, why, and until when (the spreadsheet, in Redis).

One home for the record (`record`), its history (`history`), the rules (`rules`), the
store (`store`) and how claims read (`text`). The package itself is pure: the store,
which talks to Redis, is imported as `batchctl.claims.store`.
"""

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
