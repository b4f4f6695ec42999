"""Who may claim, renew, release, drain and scale a batch: pure rules over `Claim` records.

Each rule takes the record as it is (None: free) and the request, and returns an
`Outcome`: the record to store (None: delete it) and the history event to append, or
raises. A store (the protocol: batchctl/claims/store.py) applies them atomically with
the event (the Redis store under WATCH/MULTI), so two people acting on the same batch
at the same moment cannot both win and the history never disagrees with the claims.

Errors and the CLI's exit codes: `ClaimRefused` (the request itself is not acceptable:
2; the checks of its parts, a holder, a TTL, a line of text, are in
batchctl/claims/checks.py), `ClaimConflict` (someone else holds it: 1), `Refused`
(acceptable, but not now, e.g. work is left: 1).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from batchctl.claims.checks import (
    PURPOSE_REQUIRED,
    ClaimRefused,
    check_holder,
    check_purpose,
    check_ttl,
    given,
)
from batchctl.claims.history import AUTOSCALER, ClaimEvent
from batchctl.claims.record import Claim, Override
from batchctl.claims.text import describe_expiry
from batchctl.claims.usage import deadline_text, finish_by_problem, join, used_text
from batchctl.units import format_duration


class ClaimConflict(Exception):
    """The batch is held by someone else; `existing` says by whom and until when."""

    def __init__(self, existing: Claim, now: float, action: str = "claim") -> None:
        self.existing = existing
        self.now = now
        self.action = action
        super().__init__(
            f"cannot {action} {existing.queue}: held by {existing.holder} "
            f"({describe_expiry(existing, now)})"
        )


class Refused(Exception):
    """Acceptable in itself, but not in the batch's present state (exit 1)."""


class WorkLeft(Refused):
    """A release that would leave work behind, without --drain or --force."""

    def __init__(self, claim: Claim, waiting: int, in_flight: int) -> None:
        self.claim = claim
        self.waiting = waiting
        self.in_flight = in_flight
        q = claim.queue
        state = " (draining already)" if claim.draining else ""
        super().__init__(
            f"{q} still has {waiting} waiting and {in_flight} in flight{state}: "
            f"`batchctl release {q} --drain` lets the autoscaler finish them, scale to "
            f"min_replicas and end the claim; `--force` releases now and leaves them"
        )


@dataclass(frozen=True)
class Work:
    """What is left in a batch: messages waiting and in flight."""

    waiting: int
    in_flight: int

    @property
    def total(self) -> int:
        return self.waiting + self.in_flight

    def __str__(self) -> str:
        return f"{self.waiting} waiting, {self.in_flight} in flight"


@dataclass(frozen=True)
class Outcome:
    """What a rule decided: the record afterwards (None: none) and the event, if any."""

    claim: Claim | None
    event: ClaimEvent | None
    previous: Claim | None

    @property
    def kind(self) -> str | None:
        return self.event.kind if self.event is not None else None


def decide_claim(
    existing: Claim | None,
    queue: str,
    holder: str,
    purpose: str | None,
    contact: str | None,
    ttl_seconds: float,
    now: float,
    max_ttl: float | None = None,
    *,
    finish_by: float | None = None,
    clear_finish_by: bool = False,
) -> Outcome:
    """Claim, renew, or take over an expired claim; ClaimConflict while another's is live.

    The holder renewing keeps `since`, the purpose and contact unless new ones are
    given (blank counts as not given), any manual override, the deadline unless a new
    one is given (`finish_by`, unix seconds) or `clear_finish_by`, the replica-seconds
    used so far, and ends a drain (they want the batch again). A new claim needs a
    purpose; the holder's own expired claim is claimed afresh but keeps its purpose.
    A deadline must lie ahead and within the claim (ClaimRefused otherwise): whether
    the batch can make it is the caller's check (autoscaler/policy/deadline.py).
    """
    check_holder(holder)
    check_ttl(ttl_seconds, max_ttl)
    new_purpose = check_purpose(purpose)
    new_contact = given(contact, "--contact")
    expires = now + ttl_seconds
    if existing is not None and not existing.expired(now):
        if existing.holder != holder:
            raise ClaimConflict(existing, now)
        kind = "extended" if expires >= existing.expires else "shortened"
        deadline = None if clear_finish_by else finish_by or existing.finish_by
        _check_finish_by(deadline, expires, now, given=finish_by is not None, max_ttl=max_ttl)
        renewed = replace(
            existing,
            purpose=new_purpose or existing.purpose,
            contact=existing.contact if new_contact is None else new_contact,
            expires=expires,
            draining_since=None,
            expiry_noted=False,
            finish_by=deadline,
        )
        # The expiry it had until now, not the new one (which the event's time and the
        # ttl give): "extended ... for 7d; it was due in 1h29m".
        due = format_duration(existing.remaining(now))
        detail = f"for {format_duration(ttl_seconds)}; it was due in {due}"
        if existing.draining:
            detail += "; drain cancelled"
        if deadline != existing.finish_by:
            detail += "; " + deadline_text(deadline, now)
        return Outcome(renewed, _event(kind, renewed, holder, now, detail), existing)
    deadline = None if clear_finish_by else finish_by
    _check_finish_by(deadline, expires, now, given=True, max_ttl=max_ttl)
    mine = existing is not None and existing.holder == holder
    kept = existing.purpose if (mine and existing is not None) else None
    final_purpose = new_purpose or kept
    if not final_purpose:
        raise ClaimRefused(PURPOSE_REQUIRED)
    contact_kept = existing.contact if (mine and existing is not None) else ""
    new = Claim(
        queue,
        holder,
        final_purpose,
        contact_kept if new_contact is None else new_contact,
        now,
        expires,
        finish_by=deadline,
    )
    with_deadline = "" if deadline is None else deadline_text(deadline, now)
    if existing is None:
        return Outcome(new, _event("claimed", new, holder, now, with_deadline), None)
    ago = format_duration(now - existing.expires)
    if mine:
        detail = join(f"again; the previous claim expired {ago} ago", with_deadline)
        used = existing.replica_seconds
        return Outcome(new, _event("claimed", new, holder, now, detail, used), existing)
    was = f" ({existing.purpose})" if existing.purpose else ""
    whose = f"from {existing.holder}{was}, whose claim expired {ago} ago"
    detail = join(whose, used_text(existing, " by it"), with_deadline)
    event = _event("taken_over", new, holder, now, detail, existing.replica_seconds)
    return Outcome(new, event, existing)


def _check_finish_by(
    deadline: float | None, expires: float, now: float, *, given: bool, max_ttl: float | None
) -> None:
    problem = finish_by_problem(deadline, expires, now, given=given, max_ttl=max_ttl)
    if problem is not None:
        raise ClaimRefused(problem)


def decide_release(
    existing: Claim | None,
    holder: str,
    force: bool,
    now: float,
    *,
    work: Work | None = None,
    drain: bool = False,
    reason: str = "",
) -> Outcome:
    """Give a batch back. `work` is what is left in it (None: not checked).

    With work left: refused (`WorkLeft`) unless `drain` (the claim becomes draining, the
    autoscaler ends it) or `force` (released now, the work left behind). Someone else's
    claim needs `force` (ClaimConflict otherwise), expired or not, and a `reason`
    (ClaimRefused otherwise; it goes into the history, as a forced scale's does); with
    `drain` too it drains theirs. Both on one's own claim contradict each other:
    ClaimRefused.
    """
    check_holder(holder)
    reason = given(reason, "--reason") or ""
    if existing is None:
        return Outcome(None, None, None)
    others = existing.holder != holder
    if others and not force:
        raise ClaimConflict(existing, now, action="release")
    if others and not reason:
        raise ClaimRefused(
            f"--force on {existing.holder}'s claim needs --reason: say why you release "
            "someone else's batch (it is recorded in the history)"
        )
    if drain and force and not others:
        # On one's own claim --force only means "leave the work behind", which --drain
        # contradicts; on someone else's it means "not mine" and drains theirs.
        raise ClaimRefused(
            f"--drain and --force contradict each other on your own claim on "
            f"{existing.queue}: --drain lets the autoscaler finish the work, --force "
            "releases now and leaves it; give one of them"
        )
    left = work is not None and work.total > 0
    if left and drain:
        assert work is not None
        if existing.draining:
            return Outcome(existing, None, existing)
        draining = replace(existing, draining_since=now, override=None)
        detail = f"{work} left: no growth; the autoscaler finishes, scales to min_replicas"
        if others:
            detail += f"; held by {existing.holder}, drained by {holder} (--force): {reason}"
        return Outcome(draining, _event("draining", draining, holder, now, detail), existing)
    if left and not force:
        assert work is not None
        raise WorkLeft(existing, work.waiting, work.in_flight)
    details = []
    if others:
        details.append(f"held by {existing.holder}, released by {holder}: {reason}")
    if left:
        details.append(f"{work} left behind")
    elif drain:
        details.append("nothing left to drain")
    details.append(used_text(existing))
    kind = "forced" if (others or left) else "released"
    event = _event(kind, existing, holder, now, join(*details), existing.replica_seconds)
    return Outcome(None, event, existing)


def decide_override(
    existing: Claim | None,
    queue: str,
    holder: str,
    replicas: int,
    until: float,
    now: float,
    *,
    force: bool = False,
    reason: str = "",
) -> Outcome:
    """`batchctl scale`: set `replicas` on a live claim until `until` (never past the
    claim's expiry). The holder only; someone else with `force` and a `reason`."""
    check_holder(holder)
    reason = given(reason, "--reason") or ""
    if force and not reason:
        raise ClaimRefused("--force needs --reason: say why you scale someone else's batch")
    if existing is None:
        raise Refused(
            f"nobody holds {queue}: claim it first (batchctl claim {queue} --purpose ...), "
            "then scale it"
        )
    if existing.expired(now):
        raise Refused(
            f"the claim on {queue} ({existing.holder}) {describe_expiry(existing, now)}: "
            f"renew it first (batchctl claim {queue})"
        )
    others = existing.holder != holder
    if others and not force:
        raise ClaimConflict(existing, now, action="scale")
    if existing.draining:
        raise Refused(
            f"{queue} is draining (released with --drain): the autoscaler finishes it; "
            f"claim it again (batchctl claim {queue}) to use it, then scale"
        )
    end = min(until, existing.expires)
    override = Override(replicas, end, holder, reason.strip(), now)
    new = replace(existing, override=override)
    detail = f"{replicas} replicas for {format_duration(end - now)}"
    if end < until:
        detail += " (until the claim expires)"
    if reason.strip():
        detail += f": {reason.strip()}"
    if others:
        detail += f"; held by {existing.holder}"
    kind = "forced" if others else "scaled"
    return Outcome(new, _event(kind, new, holder, now, detail), existing)


def decide_drain_end(existing: Claim | None, seen: Claim, now: float, detail: str) -> Outcome:
    """The autoscaler ends a drained claim: only the very claim it saw draining."""
    if existing is None or not seen.same_claim(existing) or not existing.draining:
        return Outcome(existing, None, existing)
    detail = join(detail, used_text(existing))
    event = _event("drained", existing, AUTOSCALER, now, detail, existing.replica_seconds)
    return Outcome(None, event, existing)


def decide_usage(existing: Claim | None, seen: Claim, replica_seconds: float) -> Outcome:
    """The autoscaler adds `replica_seconds` used to the claim it saw, if it is still that
    claim. No event: usage is bookkeeping, told when the claim ends (released, drained,
    forced, taken over)."""
    if existing is None or not seen.same_claim(existing) or not replica_seconds > 0:
        return Outcome(existing, None, existing)
    used = replace(existing, replica_seconds=existing.replica_seconds + replica_seconds)
    return Outcome(used, None, existing)


def decide_expiry_note(existing: Claim | None, seen: Claim, now: float) -> Outcome:
    """The autoscaler records an expiry once: the claim it saw, still expired, not noted."""
    if (
        existing is None
        or not seen.same_claim(existing)
        or not existing.expired(now)
        or existing.expiry_noted
    ):
        return Outcome(existing, None, existing)
    noted = replace(existing, expiry_noted=True)
    detail = f"expired {format_duration(now - existing.expires)} ago; no growth until renewed"
    detail = join(detail, used_text(existing, " so far"))
    return Outcome(noted, _event("expired", noted, AUTOSCALER, now, detail), existing)


def _event(
    kind: str, claim: Claim, who: str, now: float, detail: str, used: float | None = None
) -> ClaimEvent:
    """The event; `used`: the replica-seconds of the claim it ends (None: it ends none)."""
    q, holder, purpose = claim.queue, claim.holder, claim.purpose
    return ClaimEvent(kind, q, now, who, holder, purpose, detail, replica_seconds=used)


def decide_copy(existing: Claim | None, claim: Claim, who: str, now: float, source: str) -> Outcome:
    """`batchctl claims migrate`: store `claim` (read from the `source` store) as it is,
    since, expiry, drain and override included, with a `migrated` event by `who`. A
    record of that very claim (same holder and start) is brought up to date (no event
    when it is equal already); another live claim raises ClaimConflict, never lost."""
    if existing is not None and not existing.expired(now):
        if not existing.same_claim(claim):
            raise ClaimConflict(existing, now, action="copy a claim onto")
        if existing == claim:
            return Outcome(existing, None, existing)
    detail = f"copied from the {source} store by {who}"
    return Outcome(claim, _event("migrated", claim, who, now, detail), existing)
