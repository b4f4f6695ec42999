"""Claims: who is using which batch, why, and until when (the spreadsheet, in Redis).

One home for the record (`record`), the rules (`rules`), the store (`store`) and how
claims read (`text`). The package itself is pure: the store, which talks to Redis, is
imported as `batchctl.claims.store`.
"""

from batchctl.claims.record import KEY, Claim, claim_key
from batchctl.claims.rules import ClaimConflict, decide_claim, decide_release
from batchctl.claims.text import claim_summary, describe_expiry

__all__ = [
    "KEY",
    "Claim",
    "ClaimConflict",
    "claim_key",
    "claim_summary",
    "decide_claim",
    "decide_release",
    "describe_expiry",
]
