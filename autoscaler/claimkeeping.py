"""What the loop does about claims besides obeying them: it ends a drained claim, records
an expiry, and logs work in a batch that nobody claimed (what a claim used is added by
autoscaler/usage.py).

The policy only reads claims (a claimed batch may grow); these are the loop's writes and
warnings, done after the tick's decisions so that a drain ends only once the tick leaves
the batch at min_replicas.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from autoscaler.policy import BatchObservation, Decision
from batchctl.claims import Claim
from batchctl.config import Config
from batchctl.log import get_logger

log = get_logger("batchctl.autoscaler")

# A batch with work that nobody claimed is logged at most this often (per batch).
UNCLAIMED_LOG_SECONDS = 600.0


class ClaimKeeper(Protocol):
    """The claims the autoscaler itself changes (batchctl.claims.store.ClaimStore): it ends
    a drained claim, records an expiry and adds the replica-seconds used, each only if
    the claim is still the one seen."""

    def end_drain(self, queue: str, seen: Claim, now: float, detail: str) -> object: ...

    def note_expired(self, queue: str, seen: Claim, now: float) -> object: ...

    def add_usage(self, queue: str, seen: Claim, replica_seconds: float) -> object: ...


def keep_claims(
    keeper: ClaimKeeper,
    cfg: Config,
    obs: Sequence[BatchObservation],
    decisions: Sequence[Decision],
    now: float,
) -> list[str]:
    """End the claims whose drain is done, and record expiries, once each; returns the
    queues whose claim could not be updated (logged; the next tick tries again).

    A drain is done when the batch is at min_replicas with nothing waiting or in flight,
    and this tick leaves it there. The store checks, in one transaction, that the claim
    is still the one observed, so a stale snapshot or a second leader never ends a newer
    claim."""
    failed = []
    by_queue = {d.queue: d for d in decisions}
    for o in obs:
        c, d = o.claim, by_queue.get(o.queue)
        batch = cfg.batch(o.queue)
        if c is None or d is None or batch is None or not (o.data_ok and o.replicas_known):
            continue
        try:
            if c.draining and o.work == 0 and d.desired == d.current <= batch.min_replicas:
                detail = f"nothing waiting or in flight, {d.current} replicas: claim ended"
                keeper.end_drain(o.queue, c, now, detail)
            elif c.expired(now) and not c.expiry_noted and not c.draining:
                keeper.note_expired(o.queue, c, now)
        except Exception as e:  # Redis down: the next tick tries again
            failed.append(o.queue)
            log.warning("cannot update the claim", queue=o.queue, error=f"{type(e).__name__}: {e}")
    return failed


class UnclaimedReport:
    """Logs a batch with work that nobody holds, at most once per UNCLAIMED_LOG_SECONDS
    per batch (only claimed batches grow: the log line says how to claim it)."""

    def __init__(self) -> None:
        self._logged: dict[str, float] = {}  # queue -> when last logged

    def __call__(self, cfg: Config, obs: Sequence[BatchObservation], now: float) -> None:
        for o in obs:
            batch = cfg.batch(o.queue)
            c = o.claim
            held = c is not None and (not c.expired(now) or c.draining)
            if not o.data_ok or o.work == 0 or held or batch is None or not batch.require_claim:
                continue
            last = self._logged.get(o.queue)
            if last is not None and now - last < UNCLAIMED_LOG_SECONDS:
                continue
            self._logged[o.queue] = now
            log.warning(
                "work in a batch nobody claimed",
                queue=o.queue,
                waiting=o.waiting,
                in_flight=o.in_flight,
                replicas=o.replicas,
                expired_claim_of=c.holder if c is not None else None,
                fix=f"batchctl claim {o.queue} --purpose ... (only claimed batches grow)",
            )
