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
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Protocol

from batchctl.claims.history import ClaimEvent, HistoryRead
from batchctl.claims.record import Claim
from batchctl.claims.rules import Outcome, Work


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


__all__ = ["ClaimReader", "ClaimStore"]
