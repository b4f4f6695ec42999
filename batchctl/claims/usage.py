"""A claim's deadline and what it used: the checks and sentences the rules share (pure).

The deadline (`finish_by`, `batchctl claim --finish-by`) must lie ahead and within the
claim; whether the batch can make it is planned elsewhere (autoscaler/policy/
deadline.py). Usage (`replica_seconds`) is the autoscaler's count, told in the history
when a claim ends (batchctl/cost.py gives it a price).
"""

from __future__ import annotations

from batchctl.claims.record import Claim
from batchctl.units import format_duration


def finish_by_problem(
    finish_by: float | None,
    expires: float,
    now: float,
    *,
    given: bool,
    max_ttl: float | None = None,
) -> str | None:
    """Why the deadline cannot be kept with the claim, or None. `given`: the request sets
    it (else it is the one a renewal keeps); `max_ttl`: claims.max_ttl, past which no
    --ttl can reach."""
    if finish_by is None:
        return None
    what = "--finish-by" if given else "the claim's deadline (--finish-by)"
    if finish_by <= now:
        return (
            f"{what} is {format_duration(now - finish_by)} in the past: give a time ahead, "
            "e.g. --finish-by 17:00 or --finish-by 6h"
        )
    if finish_by > expires:
        fix = f"give a --ttl of at least {format_duration(finish_by - now)}"
        if max_ttl is not None and finish_by - now > max_ttl:
            fix = (
                f"no claim lasts longer than claims.max_ttl ({format_duration(max_ttl)}): "
                "give a nearer --finish-by (renew the claim and its deadline later)"
            )
        if not given:
            fix += ", or a new --finish-by (`none` drops it)"
        return (
            f"{what} is {format_duration(finish_by - expires)} after the claim would expire: {fix}"
        )
    return None


def deadline_text(finish_by: float | None, now: float) -> str:
    """'deadline in 6h' or 'deadline dropped', for an event's detail."""
    if finish_by is None:
        return "deadline dropped"
    return f"deadline in {format_duration(finish_by - now)}"


def used_text(claim: Claim, suffix: str = "") -> str:
    """'used 2.50 replica-hours' (and `suffix`) when the claim used any, else ''."""
    if claim.replica_seconds <= 0:
        return ""
    return f"used {claim.replica_seconds / 3600:.2f} replica-hours{suffix}"


def join(*parts: str) -> str:
    """The non-empty parts of a detail, joined with '; '."""
    return "; ".join(p for p in parts if p)
