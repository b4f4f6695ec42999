"""What each batch and each claim used, in replica-seconds (batchctl/cost.py prices them).

At every tick the leader adds the batch's replicas (spec.replicas, as observed) times the
seconds since its previous tick: per batch into the counter
`celery_autoscaler_replica_seconds_total`, and per claim into the claim record (the
store's `add_usage`, no history event), at most every `FLUSH_SECONDS` and at once for a
draining claim, so that the event that ends a claim (released, drained...) tells what
it used. A tick without data (no snapshot, replicas unknown) counts nothing and starts
the next interval over; a standby counts nothing (its counter stays where it was, and
`sum(increase(...))` over the replicas is the batch's total).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from autoscaler.claimkeeping import ClaimKeeper
from autoscaler.policy import BatchObservation
from batchctl.claims import Claim
from batchctl.log import get_logger

log = get_logger("batchctl.autoscaler")

FLUSH_SECONDS = 60.0


@dataclass(eq=False)  # one pending amount is itself: `in` and remove by identity
class _Pending:
    queue: str
    claim: Claim
    seconds: float
    since: float  # when this amount started to pile up (the caller's clock)


class Usage:
    """Replica-seconds per batch (`total`) and per claim (pending until written)."""

    def __init__(self) -> None:
        self.total: dict[str, float] = {}
        self._last: dict[str, float] = {}  # queue -> the previous counted tick
        self._pending: dict[str, _Pending] = {}  # queue -> its current claim's amount
        # Amounts of claims that ended or changed hands before they were written.
        self._left: list[_Pending] = []

    def count(self, obs: Sequence[BatchObservation], now: float) -> None:
        """Add each batch's replicas x the seconds since its previous tick."""
        for o in obs:
            if not (o.data_ok and o.replicas_known):
                self._last.pop(o.queue, None)
                continue
            last, self._last[o.queue] = self._last.get(o.queue), now
            if last is None or now <= last:
                continue
            spent = o.replicas * (now - last)
            if spent <= 0:
                continue
            self.total[o.queue] = self.total.get(o.queue, 0.0) + spent
            c = o.claim
            if c is None:
                continue
            p = self._pending.get(o.queue)
            if p is not None and p.claim.same_claim(c):
                p.seconds += spent
                p.claim = c
                continue
            if p is not None:  # another claim now: what the old one had is written first
                self._left.append(p)
            self._pending[o.queue] = _Pending(o.queue, c, spent, now)

    def flush(self, keeper: ClaimKeeper, now: float, *, force: bool = False) -> list[str]:
        """Write what is pending to the claims: amounts older than FLUSH_SECONDS, those of
        draining claims (their end is near), those of claims that changed, and all of
        them with `force`. Returns the queues whose write failed (kept for the next tick)."""
        due = [
            p
            for p in self._pending.values()
            if force or p.claim.draining or now - p.since >= FLUSH_SECONDS
        ]
        failed = []
        for p in [*self._left, *due]:
            try:
                keeper.add_usage(p.queue, p.claim, p.seconds)
            except Exception as e:  # the store is down: the next tick tries again
                failed.append(p.queue)
                log.warning(
                    "cannot record the claim's usage", queue=p.queue, error=type(e).__name__
                )
                continue
            if p in self._left:
                self._left.remove(p)
            elif self._pending.get(p.queue) is p:
                del self._pending[p.queue]
        return failed
