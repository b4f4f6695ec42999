"""Claims kept in the broker's Redis: one hash per batch, written atomically, with history.

The first `ClaimStore` (batchctl/claims/store.py): the shared spreadsheet of the
operations page, in the broker the exporter already reads. A claim past its expiry is
not deleted: the record stays, so the autoscaler can drain the batch and status can
say who forgot to release it, until someone releases or re-claims it. Each change
applies its rule (batchctl/claims/rules.py) under WATCH/MULTI and appends the event it
makes to the history stream (batchctl/claims/history.py) in the same transaction,
then logs it. Every Redis error leaves as a StoreError (batchctl/claims/
redis_errors.py says which).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import redis

from batchctl.claims.history import (
    ClaimEvent,
    HistoryRead,
    history_key,
    parse_entries,
    select,
)
from batchctl.claims.record import KEY, Claim
from batchctl.claims.redis_errors import client_url, store_error
from batchctl.claims.rules import Outcome
from batchctl.claims.store import RuleStore, unchanged
from batchctl.log import get_logger

log = get_logger("batchctl.claims")

_MAX_RETRIES = 20
DEFAULT_HISTORY_CAP = 10_000


class RedisClaimStore(RuleStore):
    """Claims kept in the broker's Redis; works with decoded or raw (bytes) clients.

    `prefix` is the broker's global_keyprefix; `history_cap` about how many events the
    stream keeps (XADD MAXLEN ~); `url` where the client connects, named in errors
    without its password (default: the client's host, port and database)."""

    def __init__(
        self,
        client: redis.Redis,
        prefix: str = "",
        history_cap: int = DEFAULT_HISTORY_CAP,
        url: str | None = None,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.history_cap = history_cap
        self.url = url if url is not None else client_url(client)

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Redis errors as the store-neutral StoreError, the Redis error as its cause."""
        try:
            yield
        except redis.RedisError as e:
            raise store_error(self.url, e) from e

    def close(self) -> None:
        self.client.close()

    def key(self, queue: str) -> str:
        return self.prefix + KEY.format(queue=queue)

    @property
    def history_key(self) -> str:
        return history_key(self.prefix)

    def get(self, queue: str) -> Claim | None:
        with self._errors():
            return Claim.from_fields(queue, self.client.hgetall(self.key(queue)))

    def all(self, queues: Iterable[str]) -> dict[str, Claim | None]:
        """Every queue's claim (None when free), in one round trip."""
        names = list(queues)
        with self._errors():
            pipe = self.client.pipeline(transaction=False)
            for q in names:
                pipe.hgetall(self.key(q))
            replies = pipe.execute()
        return {q: Claim.from_fields(q, raw) for q, raw in zip(names, replies, strict=True)}

    # -- changes (each one transaction: the record and its event; RuleStore) -----------

    def _claims_for_any(self, queues: Sequence[str]) -> dict[str, Claim | None]:
        """Every queue's claim in one round trip; a claim key that cannot be read
        (another type under its name: WRONGTYPE) is left out: neither free nor lapsed,
        that batch is skipped and the others stay takeable."""
        with self._errors():
            pipe = self.client.pipeline(transaction=False)
            for q in queues:
                pipe.hgetall(self.key(q))
            replies = pipe.execute(raise_on_error=False)
        return {
            q: Claim.from_fields(q, raw)
            for q, raw in zip(queues, replies, strict=True)
            if not isinstance(raw, redis.ResponseError)
        }

    # -- history ----------------------------------------------------------------------

    def history(self, queue: str | None = None, since: float | None = None) -> HistoryRead:
        """Events oldest first; of one batch with `queue`; from `since` (unix seconds) on;
        and how many entries of the stream (of any batch) could not be read."""
        # Entry ids are the Redis server's milliseconds: start an hour early in case its
        # clock differs from the writers', then filter on the events' own `at`.
        start = "-" if since is None else str(max(0, int((since - 3600) * 1000)))
        with self._errors():
            entries: list[Any] = self.client.xrange(self.history_key, min=start) or []
        return select(parse_entries(entries), queue, since)

    def recent(self, count: int) -> HistoryRead:
        """The newest `count` entries' events, newest first, and the unreadable ones
        counted (`skipped`)."""
        with self._errors():
            entries: list[Any] = self.client.xrevrange(self.history_key, count=count) or []
        return parse_entries(entries)

    # -- the transaction --------------------------------------------------------------

    def _transact(
        self,
        queue: str,
        decide: Callable[[Claim | None], Outcome],
        forcing: str | None = None,
    ) -> Outcome:
        """Read, decide purely, write the record and its event; retry if the record
        changed in between. Nothing is written when the rule decided no change; a change
        without an event (usage) writes the record alone. Whoever may write the broker
        may force: `forcing` is not checked here."""
        key = self.key(queue)
        pipe: Any
        with self._errors(), self.client.pipeline() as pipe:
            for _ in range(_MAX_RETRIES):
                try:
                    pipe.watch(key)
                    existing = Claim.from_fields(queue, pipe.hgetall(key))
                    out = decide(existing)
                    if unchanged(out, existing):
                        return out
                    pipe.multi()
                    pipe.delete(key)
                    if out.claim is not None:
                        pipe.hset(key, mapping=out.claim.to_fields())
                    if out.event is not None:
                        pipe.xadd(
                            self.history_key,
                            out.event.to_fields(),
                            maxlen=self.history_cap,
                            approximate=True,
                        )
                    pipe.execute()
                except redis.WatchError:
                    continue
                finally:
                    pipe.reset()
                if out.event is not None:
                    log.info("claim event", **_log_fields(out.event))
                return out
        raise RuntimeError(f"claim on {queue} kept changing under us; try again")


def _log_fields(e: ClaimEvent) -> dict[str, str]:
    return {
        "kind": e.kind,
        "queue": e.queue,
        "who": e.who,
        "holder": e.holder,
        "purpose": e.purpose,
        "detail": e.detail,
    }


__all__ = ["DEFAULT_HISTORY_CAP", "RedisClaimStore"]
