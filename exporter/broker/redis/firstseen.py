"""batchctl's own hash of first-seen times, `batchctl:first_seen` (after kombu's
`global_keyprefix`): the writes queued between reads, and the read-back at start.

The ages themselves are exporter/broker/redis/ages.py's AgeTracker; this module only moves them to
and from Redis. It never touches a key of kombu's (tests/exporter/broker/redis/test_layout.py).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable

import redis

from exporter.broker.redis.ages import AgeTracker

AGES_KEY = "batchctl:first_seen"
AGES_TTL_MS = 24 * 3600 * 1000
# The TTL is refreshed at most this often (seconds).
AGES_REFRESH_SECONDS = 60.0
# Writes sent with one read, at most: after a start with 10,000 queues all 40,000 lists
# change at once, and packing them into one pipeline cost ~9 MB of transient memory
# (benchmarks/README.md); the rest follows with the next reads.
WRITES_PER_READ = 4000
# Fields per HSCAN page when a new process reads the times back.
SEED_PAGE = 1000
# Fields per HSET/HDEL command.
FIELDS_PER_COMMAND = 1000


class FirstSeenStore:
    """Pending writes of one BrokerReader's AgeTracker, and its one read-back.

    Not thread-safe: the reader serialises its reads."""

    def __init__(self, key: bytes, ages: AgeTracker) -> None:
        self.key = key
        self.ages = ages
        self.seeded = False
        # False once the broker refused a write (a user that may not write): the ages
        # then start afresh after a restart, and nothing more is sent.
        self.enabled = True
        # Lists whose value is to be written: an ordered set, values encoded when sent.
        self._pending: dict[bytes, None] = {}
        self._ttl_at = float("-inf")

    @property
    def pending(self) -> int:
        return len(self._pending)

    def add(self, keys: Iterable[bytes]) -> None:
        """Lists whose persisted value changed (or that went away: then deleted)."""
        if self.enabled:
            self._pending.update(dict.fromkeys(keys))

    def disable(self) -> None:
        """The broker refused our writes: keep none pending and send no more."""
        self.enabled = False
        self._pending.clear()

    def queue(self, pipe: redis.client.Pipeline, now: float, limit: int | None) -> list[bytes]:
        """Queue up to `limit` pending writes on `pipe` (the oldest first; the others
        wait for the next read), and the TTL when due. Returns the keys queued: give them
        to `requeue` if the pipeline fails."""
        if limit is not None and len(self._pending) > limit:
            keys = list(itertools.islice(self._pending, limit))
            for k in keys:
                del self._pending[k]
        else:
            keys, self._pending = list(self._pending), {}
        values = [self.ages.persisted(k) for k in keys]
        sets = [x for k, v in zip(keys, values, strict=True) if v is not None for x in (k, v)]
        dels = [k for k, v in zip(keys, values, strict=True) if v is None]
        step = FIELDS_PER_COMMAND
        for i in range(0, len(sets), 2 * step):
            pipe.hset(self.key, items=sets[i : i + 2 * step])
        for i in range(0, len(dels), step):
            pipe.hdel(self.key, *dels[i : i + step])
        refresh = now - self._ttl_at >= AGES_REFRESH_SECONDS
        if self.enabled and (sets or (refresh and self.seeded)):
            pipe.pexpire(self.key, AGES_TTL_MS)
            self._ttl_at = now
        return keys

    def requeue(self, keys: list[bytes]) -> None:
        """Writes that did not reach Redis go back to the front of the queue (their
        values are encoded when sent, so sending them again is exact)."""
        if self.enabled:
            self._pending = dict.fromkeys(keys) | self._pending

    def seed(self, client: redis.Redis, layout: Iterable[bytes]) -> None:
        """The times a previous process left for the lists of `layout`, read once before
        the first read, in HSCAN pages of SEED_PAGE fields: with 10,000 queues the hash
        read whole (HGETALL) added ~8 MB to the peak of a restart (benchmarks/README.md).
        Raises what Redis raises, but WRONGTYPE: then the next read tries again."""
        wanted = set(layout)
        cursor = 0
        try:
            while True:
                cursor, page = client.hscan(self.key, cursor, count=SEED_PAGE)
                for key, value in page.items() if isinstance(page, dict) else ():
                    if key in wanted and key not in self.ages.lists and isinstance(value, bytes):
                        self.ages.seed(key, value)
                if not cursor:
                    break
        except redis.ResponseError as e:
            # Not a hash (someone else's key): ages start afresh. Any other error (BUSY,
            # MASTERDOWN, ...) fails this read, and the next one reads the hash again.
            if not str(e).startswith("WRONGTYPE"):
                raise
        self.seeded = True

    def flush(self, client: redis.Redis) -> None:
        """Write every pending change now (on shutdown)."""
        if not self._pending:
            return
        pipe = client.pipeline(transaction=False)
        keys = self.queue(pipe, float("inf"), limit=None)
        try:
            pipe.execute(raise_on_error=False)
        except redis.RedisError:
            self.requeue(keys)
            raise
