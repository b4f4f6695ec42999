"""The claim store: where claims and their history are kept, behind one protocol.

The rules decide (batchctl/claims/rules.py, pure); a store keeps their decisions. Every
change reads the batch's record, asks its rule, and writes the record and the event
the rule made in one atomic step, retrying when the record changed in between. The
first implementation keeps them in the broker's Redis (`RedisClaimStore`,
batchctl/claims/redis_store.py); `batchctl.claims.service.store_for` picks one from
`claims.store`.

What every implementation guarantees (tests/batchctl/test_claim_store_rules.py runs
one table of cases against each store):

- A change and its history event are written together or not at all; a rule that
  raises, or decides that nothing changes, writes nothing. A change without an event
  (the autoscaler's count of replica-seconds used, `add_usage`) is written alone.
- Two callers changing one batch at once never both win: exactly one of concurrent
  `take`s of a free batch succeeds, and `take_any` never gives one batch twice.
- A claim past its expiry stays readable until it is released or taken over (status
  names who forgot it; the autoscaler drains it).
- Times are unix seconds passed in (`now`, `until`, `since`), from the caller's clock.
- Errors: the rules' `ClaimConflict`, `ClaimRefused`, `Refused` (and `WorkLeft`) pass
  through as raised; the store's own failures are `StoreUnavailable`,
  `StoreRefused` or `StoreFault` (batchctl/claims/errors.py), never a backend's own
  exception, so callers handle every store alike.

A store built on one atomic read-decide-write step subclasses `RuleStore`, which writes
the rules' operations once over it (the Redis, Lease and SQLite stores do).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Protocol

from batchctl.claims.history import ClaimEvent, HistoryRead
from batchctl.claims.record import Claim
from batchctl.claims.rules import (
    Outcome,
    Work,
    decide_claim,
    decide_drain_end,
    decide_expiry_note,
    decide_override,
    decide_release,
    decide_usage,
)


class ClaimReader(Protocol):
    """Reading claims and their history (the status page, `status`, `history`)."""

    def get(self, queue: str) -> Claim | None:
        """The claim on `queue` (expired or not), None when it is free."""
        ...

    def all(self, queues: Iterable[str]) -> dict[str, Claim | None]:
        """Every queue's claim (None when free), read together."""
        ...

    def history(self, queue: str | None = None, since: float | None = None) -> HistoryRead:
        """Events oldest first; of one batch with `queue`; from `since` (unix seconds)
        on; and how many stored entries (of any batch) could not be read (skipped)."""
        ...

    def recent(self, count: int) -> HistoryRead:
        """The newest `count` entries' events, newest first, and how many of those
        entries could not be read as events (left out, counted in `skipped`)."""
        ...

    def close(self) -> None:
        """Let go of connections; the store is not used afterwards."""
        ...


class ClaimStore(ClaimReader, Protocol):
    """Claims kept somewhere, changed only through the rules, each change atomic with
    its event. Every change returns the rule's `Outcome` (`event` None: nothing was
    written) or raises: ClaimConflict, ClaimRefused, Refused (the rules), StoreError
    (the store). A store that subclasses this class inherits `claim`, `release` and
    `events`, written once on top of the operations."""

    def take(
        self,
        queue: str,
        holder: str,
        purpose: str | None,
        ttl_seconds: float,
        now: float,
        contact: str | None = None,
        max_ttl: float | None = None,
        *,
        finish_by: float | None = None,
        clear_finish_by: bool = False,
    ) -> Outcome:
        """Claim, renew (the holder again: extended or shortened) or take over an
        expired claim (`rules.decide_claim`); ClaimConflict while someone else's is live.
        `finish_by` sets a deadline (unix seconds), `clear_finish_by` drops it; a
        renewal keeps it otherwise."""
        ...

    def take_any(
        self,
        queues: Sequence[str],
        holder: str,
        purpose: str | None,
        ttl_seconds: float,
        now: float,
        contact: str | None = None,
        max_ttl: float | None = None,
    ) -> Outcome | None:
        """Claim the first batch nobody holds, in the order given; failing that, take
        over the first expired claim; None when every batch is held. A batch whose
        record cannot be read is skipped, never overwritten."""
        ...

    def give_back(
        self,
        queue: str,
        holder: str,
        force: bool,
        now: float,
        *,
        work: Work | None = None,
        drain: bool = False,
        reason: str = "",
    ) -> Outcome:
        """Release, or start draining, `queue` (`rules.decide_release`)."""
        ...

    def set_override(
        self,
        queue: str,
        holder: str,
        replicas: int,
        until: float,
        now: float,
        *,
        force: bool = False,
        reason: str = "",
    ) -> Outcome:
        """Record a manual scale on the claim (`rules.decide_override`)."""
        ...

    def end_drain(self, queue: str, seen: Claim, now: float, detail: str) -> Outcome:
        """The autoscaler: end the draining claim it saw, if it is still that claim."""
        ...

    def note_expired(self, queue: str, seen: Claim, now: float) -> Outcome:
        """The autoscaler: record, once, that the claim it saw has expired."""
        ...

    def add_usage(self, queue: str, seen: Claim, replica_seconds: float) -> Outcome:
        """The autoscaler: add `replica_seconds` used to the claim it saw, if it is still
        that claim (`rules.decide_usage`); no history event."""
        ...

    # -- written once, on the operations above ----------------------------------------

    def claim(
        self,
        queue: str,
        holder: str,
        purpose: str | None,
        ttl_seconds: float,
        now: float,
        contact: str | None = None,
    ) -> Claim:
        """`take`, returning the claim stored."""
        out = self.take(queue, holder, purpose, ttl_seconds, now, contact=contact)
        assert out.claim is not None
        return out.claim

    def release(
        self,
        queue: str,
        holder: str,
        force: bool = False,
        *,
        now: float | None = None,
        reason: str = "",
    ) -> Claim | None:
        """End the claim, whatever work is left; return what was released (None:
        nothing was claimed). `now` only dates the conflict message and the event."""
        when = time.time() if now is None else now
        out = self.give_back(queue, holder, force, when, reason=reason)
        return out.previous if out.claim is None else None

    def events(self, queue: str | None = None, since: float | None = None) -> list[ClaimEvent]:
        """`history` without the count of unreadable entries."""
        return self.history(queue, since).events


def unchanged(out: Outcome, existing: Claim | None) -> bool:
    """Whether a rule's outcome writes nothing: no event, and the record as it was read
    (an event-less change, the autoscaler's usage, is still written)."""
    return out.event is None and out.claim == existing


class NotFree(Exception):
    """take_any: this batch is not (any more) free; try the next one."""


class RuleStore(ClaimStore):
    """The rules' operations written once, over a store's own atomic step: a store
    implements `_transact` (read the record, decide with the rule, write the record and
    its event together, or decide again when the record changed in between; a rule
    that changes the record without an event, `decide_usage`, has the record written
    alone, atomically all the same; `unchanged` says when nothing is written) and
    `_claims_for_any` (the records `take_any` chooses from), and inherits the rest.
    `_skipped_by_any`: store errors that make `take_any` pass a batch by (a record of
    something else under its name), never overwrite it."""

    _skipped_by_any: tuple[type[Exception], ...] = ()

    def _transact(
        self,
        queue: str,
        decide: Callable[[Claim | None], Outcome],
        forcing: str | None = None,
    ) -> Outcome:
        """Apply `decide` to `queue`'s record atomically; `forcing`: the caller asked
        --force (who), for a store that checks who may force."""
        raise NotImplementedError

    def _claims_for_any(self, queues: Sequence[str]) -> Mapping[str, Claim | None]:
        """The claims of `queues` whose record can be read (None: free); a batch whose
        record cannot be read is left out (take_any skips it)."""
        raise NotImplementedError

    def take(
        self,
        queue: str,
        holder: str,
        purpose: str | None,
        ttl_seconds: float,
        now: float,
        contact: str | None = None,
        max_ttl: float | None = None,
        *,
        finish_by: float | None = None,
        clear_finish_by: bool = False,
    ) -> Outcome:
        return self._transact(
            queue,
            lambda existing: decide_claim(
                existing,
                queue,
                holder,
                purpose,
                contact,
                ttl_seconds,
                now,
                max_ttl,
                finish_by=finish_by,
                clear_finish_by=clear_finish_by,
            ),
        )

    def take_any(
        self,
        queues: Sequence[str],
        holder: str,
        purpose: str | None,
        ttl_seconds: float,
        now: float,
        contact: str | None = None,
        max_ttl: float | None = None,
    ) -> Outcome | None:
        """Each attempt is its own atomic step: two people asking at once never get the
        same batch."""
        skip: tuple[type[Exception], ...] = (NotFree, *self._skipped_by_any)
        current = self._claims_for_any(queues)
        free = [q for q in queues if q in current and current[q] is None]
        lapsed = [q for q in queues if (c := current.get(q)) is not None and c.expired(now)]
        for candidates, allow_expired in ((free, False), (lapsed, True)):
            for queue in candidates:

                def decide(existing: Claim | None, queue: str = queue, ok: bool = allow_expired):
                    if existing is not None and not (ok and existing.expired(now)):
                        raise NotFree(queue)
                    return decide_claim(
                        existing, queue, holder, purpose, contact, ttl_seconds, now, max_ttl
                    )

                try:
                    return self._transact(queue, decide)
                except skip:
                    continue
        return None

    def give_back(
        self,
        queue: str,
        holder: str,
        force: bool,
        now: float,
        *,
        work: Work | None = None,
        drain: bool = False,
        reason: str = "",
    ) -> Outcome:
        return self._transact(
            queue,
            lambda existing: decide_release(
                existing, holder, force, now, work=work, drain=drain, reason=reason
            ),
            forcing=holder if force else None,
        )

    def set_override(
        self,
        queue: str,
        holder: str,
        replicas: int,
        until: float,
        now: float,
        *,
        force: bool = False,
        reason: str = "",
    ) -> Outcome:
        return self._transact(
            queue,
            lambda existing: decide_override(
                existing, queue, holder, replicas, until, now, force=force, reason=reason
            ),
            forcing=holder if force else None,
        )

    def end_drain(self, queue: str, seen: Claim, now: float, detail: str) -> Outcome:
        return self._transact(queue, lambda existing: decide_drain_end(existing, seen, now, detail))

    def note_expired(self, queue: str, seen: Claim, now: float) -> Outcome:
        return self._transact(queue, lambda existing: decide_expiry_note(existing, seen, now))

    def add_usage(self, queue: str, seen: Claim, replica_seconds: float) -> Outcome:
        return self._transact(queue, lambda existing: decide_usage(existing, seen, replica_seconds))


__all__ = ["ClaimReader", "ClaimStore", "NotFree", "RuleStore", "unchanged"]
