"""Claim and release as the CLI offers them: validation, the store, one result to print.

Pure checks first (a configured batch, a purpose for a new claim), then one atomic
write through `ClaimStore`. Errors are exceptions whose message is the whole story:
`ClaimConflict` (someone else holds it), `ClaimRefused` (the request itself is not
acceptable), `redis.RedisError` (the broker cannot be reached).
"""

from __future__ import annotations

from dataclasses import dataclass

from batchctl.brokerurl import connect
from batchctl.claims.record import Claim
from batchctl.claims.store import ClaimStore
from batchctl.config import Config


class ClaimRefused(ValueError):
    """The request cannot be accepted as given (exit 2: fix the command)."""


@dataclass(frozen=True)
class Claimed:
    claim: Claim
    extended: bool  # True when the holder already held it


def check_batch(cfg: Config, queue: str) -> None:
    if cfg.batch(queue) is None:
        names = ", ".join(b.queue for b in cfg.batches) or "(none)"
        raise ClaimRefused(
            f"queue {queue!r} is not a configured batch; configured batches: {names}"
        )


def store_for(cfg: Config) -> ClaimStore:
    """A store on the broker's Redis (the same client settings as the exporter's)."""
    return ClaimStore(connect(cfg.broker), prefix=cfg.broker.global_keyprefix)


def claim(
    cfg: Config,
    queue: str,
    holder: str,
    purpose: str | None,
    contact: str | None,
    ttl_seconds: float,
    now: float,
    store: ClaimStore | None = None,
) -> Claimed:
    """Take or extend the claim on `queue`. Raises ClaimRefused, ClaimConflict, RedisError."""
    check_batch(cfg, queue)
    own = store is None
    store = store if store is not None else store_for(cfg)
    try:
        current = store.get(queue)
        mine = current is not None and current.holder == holder and not current.expired(now)
        if purpose is None and not mine:
            raise ClaimRefused(
                "--purpose is required for a new claim: say what the batch is for, "
                'e.g. --purpose "reindex dockets"'
            )
        new = store.claim(queue, holder, purpose, ttl_seconds, now, contact=contact)
        return Claimed(new, extended=new.since < now)
    finally:
        if own:
            store.client.close()


def release(
    cfg: Config, queue: str, holder: str, force: bool, now: float, store: ClaimStore | None = None
) -> Claim | None:
    """Release `queue`; the claim released (None: it was free). Raises ClaimRefused,
    ClaimConflict (someone else's, without `force`), RedisError."""
    check_batch(cfg, queue)
    own = store is None
    store = store if store is not None else store_for(cfg)
    try:
        return store.release(queue, holder, force=force, now=now)
    finally:
        if own:
            store.client.close()
