"""Claims as the CLI offers them: validation, the store, one outcome to print.

Pure checks first (a configured batch, a TTL within claims.max_ttl, a purpose for a
new claim), then one atomic write through the configured `ClaimStore`
(`claims.store`). Errors are exceptions whose message is the whole story:
`ClaimConflict` (someone else holds it), `ClaimRefused` (the request itself is not
acceptable), `Refused` (not now, e.g. work is left), `StoreError` (the store failed:
`StoreUnavailable`, `StoreRefused`, `StoreFault`, batchctl/claims/errors.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from batchctl.claims.history import HistoryRead
from batchctl.claims.rules import (
    PURPOSE_REQUIRED,
    ClaimRefused,
    Outcome,
    Work,
    check_holder,
    check_purpose,
    check_ttl,
)
from batchctl.claims.store import ClaimReader, ClaimStore
from batchctl.config import Config

__all__ = [
    "STORES",
    "ClaimRefused",
    "check_batch",
    "claim",
    "claim_any",
    "history",
    "reader_for",
    "release",
    "store_for",
    "using",
]


def check_batch(cfg: Config, queue: str) -> None:
    if cfg.batch(queue) is None:
        names = ", ".join(b.queue for b in cfg.batches) or "(none)"
        raise ClaimRefused(
            f"queue {queue!r} is not a configured batch; configured batches: {names}"
        )


def _redis_store(cfg: Config) -> ClaimStore:
    """On the broker's Redis, with the same client settings as the exporter's."""
    # Imported once chosen: a store of another kind loads no Redis client.
    from batchctl.brokerurl import connect
    from batchctl.claims.redis_store import RedisClaimStore

    # Raw bytes: a record or history entry that is not UTF-8 is decoded with
    # replacement by the claims code, instead of failing in the client's parser.
    return RedisClaimStore(
        connect(cfg.broker, decode_responses=False),
        prefix=cfg.broker.global_keyprefix,
        history_cap=cfg.claims.history_max_events,
        url=cfg.broker.url,
    )


def _kubernetes_store(cfg: Config) -> ClaimStore:
    """Leases in kubernetes.namespace, through the kubeconfig or the pod's account."""
    # Imported once chosen: a store of another kind loads no Kubernetes client.
    from batchctl.claims.lease_store import LeaseClaimStore

    return LeaseClaimStore(cfg.kubernetes, history_max_events=cfg.claims.history_max_events)


def _sqlite_store(cfg: Config) -> ClaimStore:
    """In a SQLite file of this machine (local runs, any broker)."""
    from batchctl.claims.sqlite_store import SqliteClaimStore, default_path

    path = cfg.claims.sqlite_path or default_path()
    return SqliteClaimStore(path, history_cap=cfg.claims.history_max_events)


# Each value of `claims.store` and how to open it (a store of another kind adds one).
STORES: dict[str, Callable[[Config], ClaimStore]] = {
    "redis": _redis_store,
    "kubernetes": _kubernetes_store,
    "sqlite": _sqlite_store,
}


def store_for(cfg: Config) -> ClaimStore:
    """The store `claims.store` names; close it when done. Opening it raises nothing:
    an operation that cannot reach the store raises StoreUnavailable."""
    return STORES[cfg.claims.store](cfg)


def reader_for(cfg: Config) -> ClaimReader:
    """What a long-running reader of every claim (the exporter) uses: for the kubernetes
    store a started watch of the Leases (no request per collection); else the store.
    Raises KubeConfigError (batchctl.kube) when the cluster configuration is unusable."""
    if cfg.claims.store == "kubernetes":
        from batchctl.claims.lease_cache import LeaseCache

        return LeaseCache(cfg.kubernetes, history_max_events=cfg.claims.history_max_events).start()
    return store_for(cfg)


@contextmanager
def using(cfg: Config, store: ClaimStore | None) -> Iterator[ClaimStore]:
    """`store`, or one of our own (`store_for`), closed afterwards."""
    if store is not None:
        yield store
        return
    own = store_for(cfg)
    try:
        yield own
    finally:
        own.close()


def claim(
    cfg: Config,
    queue: str,
    holder: str,
    purpose: str | None,
    contact: str | None,
    ttl_seconds: float,
    now: float,
    store: ClaimStore | None = None,
    *,
    finish_by: float | None = None,
    clear_finish_by: bool = False,
) -> Outcome:
    """Take, renew or take over the claim on `queue`, with a deadline (`finish_by`, unix
    seconds; `clear_finish_by` drops one a renewal would keep). Raises ClaimRefused,
    ClaimConflict, StoreError; nothing is written when it raises."""
    check_batch(cfg, queue)
    check_holder(holder)
    check_ttl(ttl_seconds, cfg.claims.max_ttl)
    check_purpose(purpose)
    with using(cfg, store) as s:
        return s.take(
            queue,
            holder,
            purpose,
            ttl_seconds,
            now,
            contact=contact,
            max_ttl=cfg.claims.max_ttl,
            finish_by=finish_by,
            clear_finish_by=clear_finish_by,
        )


def claim_any(
    cfg: Config,
    holder: str,
    purpose: str | None,
    contact: str | None,
    ttl_seconds: float,
    now: float,
    store: ClaimStore | None = None,
) -> Outcome | None:
    """Claim the first free configured batch (else the first expired claim); None when
    every batch is held. Raises ClaimRefused, StoreError."""
    check_holder(holder)
    check_ttl(ttl_seconds, cfg.claims.max_ttl)
    if check_purpose(purpose) is None:
        raise ClaimRefused(PURPOSE_REQUIRED)
    with using(cfg, store) as s:
        return s.take_any(
            [b.queue for b in cfg.batches],
            holder,
            purpose,
            ttl_seconds,
            now,
            contact=contact,
            max_ttl=cfg.claims.max_ttl,
        )


def release(
    cfg: Config,
    queue: str,
    holder: str,
    force: bool,
    now: float,
    *,
    work: Work | None = None,
    drain: bool = False,
    store: ClaimStore | None = None,
    reason: str = "",
) -> Outcome:
    """Release `queue`, or start draining it; `work` is what is left in the batch.
    Raises ClaimRefused (someone else's with `force` but no `reason` among others),
    ClaimConflict (someone else's, without `force`), WorkLeft, StoreError."""
    check_batch(cfg, queue)
    with using(cfg, store) as s:
        return s.give_back(queue, holder, force, now, work=work, drain=drain, reason=reason)


def history(
    cfg: Config, queue: str | None, since: float | None, store: ClaimStore | None = None
) -> HistoryRead:
    """Claim events oldest first, of one batch or all, from `since` on, and how many
    entries of the stream could not be read (skipped). Raises ClaimRefused, StoreError."""
    if queue is not None:
        check_batch(cfg, queue)
    with using(cfg, store) as s:
        return s.history(queue, since)
