"""The store operations, written once on two primitives every store provides.

Each change of a claim is the same dance in every store: read the batch's record,
ask the pure rule (batchctl/claims/rules.py), write the record and the rule's event
together or not at all, retrying when the record changed in between. A store
subclasses `TransactionalStore` and supplies that step (`_transact`) and a read of
several records (`_readable`); `take`, `take_any`, `give_back`, `set_override`,
`end_drain` and `note_expired` are then the same everywhere (the Redis store uses
WATCH/MULTI, the SQLite store one IMMEDIATE transaction).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from batchctl.claims.record import Claim
from batchctl.claims.rules import (
    Outcome,
    Work,
    decide_claim,
    decide_drain_end,
    decide_expiry_note,
    decide_override,
    decide_release,
)
from batchctl.claims.store import ClaimStore

Decide = Callable[[Claim | None], Outcome]


class _NotFree(Exception):
    """take_any: this batch is not (any more) free; try the next one."""


class TransactionalStore(ClaimStore):
    """The ClaimStore operations on `_transact` and `_readable`."""

    def _transact(self, queue: str, decide: Decide) -> Outcome:
        """Read `queue`'s record, `decide`, and write the outcome's record and event
        atomically (nothing when its event is None); retry if the record changed in
        between. Raises what `decide` raises, and StoreError."""
        raise NotImplementedError

    def _readable(self, queues: Sequence[str]) -> dict[str, Claim | None]:
        """The records of `queues` that can be read (None: free); a record that cannot
        be read is left out, so that it is skipped, never overwritten."""
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
    ) -> Outcome:
        """Claim, renew or take over an expired claim; ClaimConflict if someone else's is live."""
        return self._transact(
            queue,
            lambda existing: decide_claim(
                existing, queue, holder, purpose, contact, ttl_seconds, now, max_ttl
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
        """Claim the first batch nobody holds, in the order given; failing that, take over
        the first expired claim. None when every batch is held. Each attempt is its own
        transaction: two people asking at once never get the same batch."""
        current = self._readable(queues)
        free = [q for q in queues if q in current and current[q] is None]
        lapsed = [q for q in queues if (c := current.get(q)) is not None and c.expired(now)]
        for candidates, allow_expired in ((free, False), (lapsed, True)):
            for queue in candidates:

                def decide(existing: Claim | None, queue: str = queue, ok: bool = allow_expired):
                    if existing is not None and not (ok and existing.expired(now)):
                        raise _NotFree(queue)
                    return decide_claim(
                        existing, queue, holder, purpose, contact, ttl_seconds, now, max_ttl
                    )

                try:
                    return self._transact(queue, decide)
                except _NotFree:
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
        """Release (or start draining) `queue`; see `rules.decide_release`."""
        return self._transact(
            queue,
            lambda existing: decide_release(
                existing, holder, force, now, work=work, drain=drain, reason=reason
            ),
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
        """Record a manual scale on the claim (see `rules.decide_override`)."""
        return self._transact(
            queue,
            lambda existing: decide_override(
                existing, queue, holder, replicas, until, now, force=force, reason=reason
            ),
        )

    def end_drain(self, queue: str, seen: Claim, now: float, detail: str) -> Outcome:
        """The autoscaler: delete the draining claim it saw, if it is still that claim."""
        return self._transact(queue, lambda existing: decide_drain_end(existing, seen, now, detail))

    def note_expired(self, queue: str, seen: Claim, now: float) -> Outcome:
        """The autoscaler: record, once, that the claim it saw has expired."""
        return self._transact(queue, lambda existing: decide_expiry_note(existing, seen, now))


__all__ = ["Decide", "TransactionalStore"]
