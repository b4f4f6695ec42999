"""Claims on batches for the local backend: who is using a batch, why, and until when.

The shared spreadsheet of the operations page, kept in the broker's Redis as one
hash per batch, `batchctl:claim:<queue>` (after the broker's global_keyprefix), with
the fields holder, purpose, contact, since and expires (unix seconds). A claim past
its expiry is not deleted: the record stays, so the autoscaler can drain the batch
and status can say who forgot to release it, until someone releases or re-claims it.

The rules (who may claim, extend or release) are pure functions over `Claim`; the
store applies them under WATCH/MULTI, so two people claiming the same batch at the
same moment cannot both win.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from typing import Any

import redis

from exporter.claims import KEY, Claim

_MAX_RETRIES = 20


class ClaimConflict(Exception):
    """The batch is held by someone else; `existing` says by whom and until when."""

    def __init__(self, existing: Claim, now: float, action: str = "claim") -> None:
        self.existing = existing
        self.now = now
        super().__init__(
            f"cannot {action} {existing.queue}: held by {existing.holder} "
            f"({describe_expiry(existing, now)})"
        )


# -- pure rules -------------------------------------------------------------------


def decide_claim(
    existing: Claim | None,
    queue: str,
    holder: str,
    purpose: str | None,
    contact: str | None,
    ttl_seconds: float,
    now: float,
) -> Claim:
    """The claim to store, or ClaimConflict when another holder's claim is still live.

    The same holder extends (keeping `since`, and purpose/contact when not given);
    anyone may take over an expired claim.
    """
    if not holder or holder != holder.strip() or "\n" in holder:
        raise ValueError(f"holder must be a non-empty name without spaces around it: {holder!r}")
    if not ttl_seconds > 0:
        raise ValueError(f"ttl must be positive, got {ttl_seconds}")
    if existing is not None and existing.holder != holder and not existing.expired(now):
        raise ClaimConflict(existing, now)
    extending = existing is not None and existing.holder == holder and not existing.expired(now)
    if extending:
        assert existing is not None
        return Claim(
            queue,
            holder,
            existing.purpose if purpose is None else purpose,
            existing.contact if contact is None else contact,
            existing.since,
            now + ttl_seconds,
        )
    return Claim(queue, holder, purpose or "", contact or "", now, now + ttl_seconds)


def decide_release(existing: Claim | None, holder: str, force: bool, now: float) -> bool:
    """Whether to delete the record: False if there is none; ClaimConflict if not yours."""
    if existing is None:
        return False
    if existing.holder != holder and not force:
        raise ClaimConflict(existing, now, action="release")
    return True


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")


def parse_duration(text: str) -> float:
    """'90s', '30m', '8h', '2d', '1w' or combinations like '1h30m' -> seconds.

    A bare number is refused: '--ttl 8' meaning 8 seconds is never what anyone wants.
    """
    s = text.strip().lower().replace(" ", "")
    pos = 0
    total = 0.0
    for m in _DURATION.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if not s or pos != len(s):
        raise ValueError(
            f"{text!r} is not a duration: use a number with a unit s, m, h, d or w, "
            "e.g. 30m, 8h, 2d or 1h30m"
        )
    if total <= 0:
        raise ValueError(f"{text!r}: the duration must be longer than zero")
    return total


def format_duration(seconds: float) -> str:
    """A short human duration with the two largest units: '2d3h', '7h59m', '45s'."""
    s = round(abs(seconds))
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if s >= size or (unit == "s" and not parts):
            parts.append(f"{s // size}{unit}")
            s %= size
    return "".join(parts[:2])


def describe_expiry(claim: Claim, now: float) -> str:
    left = claim.remaining(now)
    if left > 0:
        return f"expires in {format_duration(left)}"
    return f"expired {format_duration(-left)} ago"


# -- the Redis store --------------------------------------------------------------


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
