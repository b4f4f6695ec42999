"""Claims kept in the broker's Redis: one hash per batch, written atomically.

The shared spreadsheet of the operations page. A claim past its expiry is not
deleted: the record stays, so the autoscaler can drain the batch and status can say
who forgot to release it, until someone releases or re-claims it. The rules live in
batchctl/claims/rules.py; this applies them under WATCH/MULTI.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import redis

from batchctl.claims.record import KEY, Claim
from batchctl.claims.rules import decide_claim, decide_release

_MAX_RETRIES = 20


class ClaimStore:
    """Claims kept in the broker's Redis; works with decoded or raw (bytes) clients."""

    def __init__(self, client: redis.Redis, prefix: str = "") -> None:
        self.client = client
        self.prefix = prefix

    def key(self, queue: str) -> str:
        return self.prefix + KEY.format(queue=queue)

    def get(self, queue: str) -> Claim | None:
        return Claim.from_fields(queue, self.client.hgetall(self.key(queue)))

    def all(self, queues: Iterable[str]) -> dict[str, Claim | None]:
        """Every queue's claim (None when free), in one round trip."""
        names = list(queues)
        pipe = self.client.pipeline(transaction=False)
        for q in names:
            pipe.hgetall(self.key(q))
        return {q: Claim.from_fields(q, raw) for q, raw in zip(names, pipe.execute(), strict=True)}

    def claim(
        self,
        queue: str,
        holder: str,
        purpose: str | None,
        ttl_seconds: float,
        now: float,
        contact: str | None = None,
    ) -> Claim:
        """Take or extend the claim; raise ClaimConflict if someone else holds it."""

        def write(existing: Claim | None) -> tuple[Claim, Callable[[Any], None]]:
            new = decide_claim(existing, queue, holder, purpose, contact, ttl_seconds, now)

            def apply(pipe: Any) -> None:
                pipe.delete(self.key(queue))
                pipe.hset(self.key(queue), mapping=new.to_fields())

            return new, apply

        return self._transact(queue, write)

    def release(
        self, queue: str, holder: str, force: bool = False, *, now: float | None = None
    ) -> Claim | None:
        """Delete the claim; return what was released (None: nothing was claimed).

        `now` only dates the conflict message; releasing does not depend on expiry.
        """
        at = time.time() if now is None else now

        def write(existing: Claim | None) -> tuple[Claim | None, Callable[[Any], None]]:
            delete = decide_release(existing, holder, force, at)

            def apply(pipe: Any) -> None:
                if delete:
                    pipe.delete(self.key(queue))

            return existing, apply

        return self._transact(queue, write)

    def _transact(
        self, queue: str, decide: Callable[[Claim | None], tuple[Any, Callable[[Any], None]]]
    ) -> Any:
        """Read, decide purely, write; retry if the record changed in between."""
        key = self.key(queue)
        with self.client.pipeline() as pipe:
            for _ in range(_MAX_RETRIES):
                try:
                    pipe.watch(key)
                    existing = Claim.from_fields(queue, pipe.hgetall(key))
                    result, apply = decide(existing)
                    pipe.multi()
                    apply(pipe)
                    pipe.execute()
                    return result
                except redis.WatchError:
                    continue
                finally:
                    pipe.reset()
        raise RuntimeError(f"claim on {queue} kept changing under us; try again")
