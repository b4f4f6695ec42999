"""The Redis reader: kombu's Redis layout in one pipelined round trip per scrape, bytes in.

The first implementation of `exporter.broker.protocol.BrokerReader`, read-only.

Nothing here writes to, deletes or moves a message or any of kombu's keys. The
commands sent are LLEN/LINDEX (inside a Lua script), HKEYS/HGET on `unacked`, INFO,
MEMORY USAGE, SCAN, SMEMBERS, HGETALL of batchctl's claim records, and the one write
the exporter does: HSET/HDEL/PEXPIRE of its own hash `batchctl:first_seen` (after
`global_keyprefix`), which keeps first-seen times across restarts (ages.py, firstseen.py).

Every reply is read as bytes: names, tags and routes that are not UTF-8, and keys of
other types under kombu's names, never fail a scrape.
"""

from __future__ import annotations

import contextlib
import hashlib
import struct
import time
from array import array
from collections.abc import Callable, Iterable, Sequence
from importlib import resources
from typing import Any, TypeVar

import redis

from batchctl.brokerparse import parse_broker_urls
from batchctl.brokerurl import connect
from batchctl.claims import Claim, claim_key
from batchctl.config import BrokerConfig
from batchctl.redact import redact_url
from exporter.broker.protocol import EMPTY, BrokerRead, QueueRead, QueueWork
from exporter.broker.redis import firstseen
from exporter.broker.redis.ages import AgeTracker
from exporter.broker.redis.discovery import Discovery, SkipLog, discover
from exporter.broker.redis.durability import DurabilityWatch
from exporter.broker.redis.firstseen import AGES_KEY, FirstSeenStore
from exporter.broker.redis.inflight import InFlight
from exporter.broker.redis.keys import list_key

# Lists per script call: Redis runs a script atomically, so chunks keep each call
# short and the broker never stalls: 500 lists take ~1.2 ms of Redis time (at most
# ~2 ms measured; 1,000 took 2-3 ms, and over 5 ms on a loaded machine), at no cost
# to the scrape (benchmarks/README.md).
LISTS_PER_CALL = 500
TAGS_PER_CALL = 1000
MEMORY_SAMPLES = 5
# A list whose length did not change has its ends re-read every VERIFY_EVERY scrapes
# (a push and a pop between two scrapes leave the length as it was).
VERIFY_EVERY = 4


def _script(name: str) -> tuple[str, str]:
    text = resources.files(__package__).joinpath(name).read_text()
    return text, hashlib.sha1(text.encode()).hexdigest()


T = TypeVar("T")
LISTS_SCRIPT, LISTS_SHA = _script("lists.lua")
UNACKED_SCRIPT, UNACKED_SHA = _script("unacked.lua")


def _chunks(seq: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for i in range(0, len(seq), size):
        yield seq[i : i + size]


def _packed(raw: bytes) -> bytes:
    """Length-prefixed, as lists.lua reads its keys and tags."""
    return struct.pack("<I", len(raw)) + raw


_EMPTY_TAG = _packed(b"")


def _int(value: Any) -> int:
    return value if isinstance(value, int) else 0


class RedisReader:
    """Reads all queues in one pipelined round trip; keeps per-list state between reads.

    A `BrokerReader` (exporter/broker/protocol.py): `changed` is True when any list's
    length or ends moved. Not thread-safe: the collector serialises reads (one
    collection in flight), and discovery only swaps `self.discovery` whole.
    """

    # redis-py's errors: connection, TLS, AUTH, Sentinel, error replies.
    errors: tuple[type[Exception], ...] = (redis.RedisError,)

    def __init__(self, cfg: BrokerConfig, client: redis.Redis | None = None) -> None:
        self.cfg = cfg
        self.client = client if client is not None else connect(cfg, decode_responses=False)
        # A ;-joined failover list: after a failed read, connect again (the next URL
        # that answers), as kombu's connection fails over.
        self._failover = client is None and len(parse_broker_urls(cfg.url)) > 1
        self._reconnect = False
        self.prefix = cfg.global_keyprefix.encode()
        self.sep = cfg.sep.encode()
        self.steps = tuple(cfg.priority_steps)
        self.unacked_key = self.prefix + b"unacked"
        self.ages_key = self.prefix + AGES_KEY.encode()
        self.discovery = Discovery()
        self.skip_log = SkipLog()
        self.ages = AgeTracker()
        self.inflight = InFlight()
        self._memory: dict[str, int] = {}
        self._memory_at = float("-inf")
        # The layout (queues, their lists) and the per-list state of the last read.
        self._queues: list[str] = []
        self._keys: list[bytes] = []
        self._blobs: list[bytes] = []
        self._len = array("i")
        # Per list, the tags at its ends as last read, length-prefixed: the form
        # lists.lua reads back when it checks a tail, and the form the first-seen
        # histories keep (one bytes object per tag, shared).
        self._tails: list[bytes] = []
        self._heads: list[bytes | None] = []
        self._reads: list[QueueRead] = []
        self._shapes: dict[tuple[tuple[int, int], ...], dict[int, int]] = {}
        self._reads_done = 0
        # Whether Redis keeps the claims across a restart (the snapshot says so).
        self.durability = DurabilityWatch()
        self.first_seen = FirstSeenStore(self.ages_key, self.ages)
        self._writes_sent = 0
        self._dirty_all = False

    @property
    def safe_url(self) -> str:
        return redact_url(self.cfg.url)

    # -- plumbing -------------------------------------------------------------------

    def _run(self, pipe: redis.client.Pipeline) -> list[Any]:
        """Execute, loading our scripts once if Redis lost them (restart, SCRIPT FLUSH).
        Error replies are returned in place for the caller to judge."""
        commands = list(pipe.command_stack)
        results = pipe.execute(raise_on_error=False)
        if any(isinstance(r, redis.exceptions.NoScriptError) for r in results):
            self.client.script_load(LISTS_SCRIPT)
            self.client.script_load(UNACKED_SCRIPT)
            retry = self.client.pipeline(transaction=False)
            retry.command_stack = commands
            results = retry.execute(raise_on_error=False)
        for r in results:
            if isinstance(r, redis.ConnectionError | redis.TimeoutError):
                raise r
        return list(results)

    def raw_name(self, queue: str) -> bytes:
        raw = self.discovery.queues.get(queue)
        return raw if raw is not None else queue.encode()

    def _layout(self, queues: Sequence[str]) -> None:
        """Keys and per-list state for `queues`, rebuilt only when the queues change."""
        queues = list(queues)
        if queues == self._queues:
            return
        old = {
            k: (n, t, h)
            for k, n, t, h in zip(self._keys, self._len, self._tails, self._heads, strict=True)
        }
        keys = [
            list_key(self.raw_name(q), s, self.prefix, self.sep) for q in queues for s in self.steps
        ]
        self._queues, self._keys = queues, keys
        unknown = (-1, None, None)
        self._len = array("i", (old.get(k, unknown)[0] for k in keys))
        self._tails = [old.get(k, unknown)[1] or _EMPTY_TAG for k in keys]
        self._heads = [old.get(k, unknown)[2] for k in keys]
        self._reads = [EMPTY] * len(queues)
        self._dirty_all = True
        self._blobs = [b"".join(map(_packed, chunk)) for chunk in _chunks(keys, LISTS_PER_CALL)]
        current = set(keys)
        gone = [k for k in self.ages.lists if k not in current]
        self.ages.retain(keys)
        self.first_seen.add(gone)

    # -- the scrape -----------------------------------------------------------------

    def read(
        self, queues: Sequence[str], now: float, claim_queues: Sequence[str] = ()
    ) -> BrokerRead:
        return self._guarded(lambda: self._read(queues, now, claim_queues))

    def work_left(self, queues: Sequence[str]) -> dict[str, QueueWork]:
        """Waiting (every priority list) and in flight (`unacked`) per queue, read as a
        scrape reads them (one round trip), without sampling memory."""
        read = self._guarded(lambda: self._read(queues, time.time(), (), sample_memory=False))
        return {
            q: QueueWork(r.waiting, read.unacked.get(q, 0))
            for q, r in zip(read.queues, read.reads, strict=True)
        }

    def ping(self) -> None:
        """One PING: is the broker there at all (connection, TLS, auth, Sentinel)?"""
        self._guarded(self.client.ping)

    def _guarded(self, fn: Callable[[], T]) -> T:
        if self._reconnect:
            self._reconnect = False
            self.client.close()
            self.client = connect(self.cfg, decode_responses=False)
        try:
            return fn()
        except redis.ConnectionError:  # AuthenticationError and TLS errors included
            self._reconnect = self._failover
            raise

    def _read(
        self,
        queues: Sequence[str],
        now: float,
        claim_queues: Sequence[str],
        sample_memory: bool = True,
    ) -> BrokerRead:
        self._layout(queues)
        state = array("i", self._len)
        due = self._reads_done % VERIFY_EVERY
        state[due::VERIFY_EVERY] = array("i", (-2 - n for n in state[due::VERIFY_EVERY]))
        state_bytes = state.tobytes()
        packed = self._tails

        if not self.first_seen.seeded:
            self.first_seen.seed(self.client, self._keys)
        pipe = self.client.pipeline(transaction=False)
        # batchctl's own first-seen writes go first, in the same round trip.
        writing = self.first_seen.queue(pipe, now, firstseen.WRITES_PER_READ)
        self._writes_sent = len(pipe.command_stack)
        per = LISTS_PER_CALL * 4
        for c, blob in enumerate(self._blobs):
            # The tails to check, in order: lists due this time. Unknown ones (-1) are
            # read whole anyway, and their empty tag is never compared.
            first = c * LISTS_PER_CALL
            last = min(first + LISTS_PER_CALL, len(self._keys))
            start = first + (due - first) % VERIFY_EVERY
            olds = b"".join(packed[start:last:VERIFY_EVERY])
            state_chunk = state_bytes[c * per : (c + 1) * per]
            first_due = start - first + 1
            pipe.execute_command(
                "EVALSHA", LISTS_SHA, 0, blob, state_chunk, olds, first_due, VERIFY_EVERY
            )
        pipe.hkeys(self.unacked_key)
        pipe.info("memory")
        for q in claim_queues:
            pipe.hgetall(claim_key(q, self.cfg.global_keyprefix))
        try:
            results = self._run(pipe)[self._writes_sent :]
        except redis.RedisError:
            self.first_seen.requeue(writing)
            raise

        calls = len(self._blobs)
        for reply in results[:calls]:
            if isinstance(reply, Exception):
                raise reply
        changed = self._apply(results[:calls], now)
        tags = results[calls]
        info = results[calls + 1]
        if not isinstance(info, dict):
            raise info if isinstance(info, Exception) else TypeError("INFO reply")
        self._reads_done += 1
        if (
            sample_memory
            and self.cfg.memory_sample_interval_seconds >= 0
            and now - self._memory_at >= self.cfg.memory_sample_interval_seconds
        ):
            self._sample_memory()
            self._memory_at = now
        claims = {}
        for q, raw in zip(claim_queues, results[calls + 2 :], strict=True):
            claim = Claim.from_fields(q, raw) if isinstance(raw, dict) else None
            if claim is not None:
                claims[q] = claim
        unacked = self.inflight.update(
            tags if isinstance(tags, list) else [], self._resolve, self.discovery.bindings
        )
        return BrokerRead(
            queues=self._queues,
            reads=self._reads,
            changed=changed,
            unacked=unacked,
            used_memory=int(info.get("used_memory", 0)),
            max_memory=int(info.get("maxmemory", 0)),
            memory=self._memory,
            claims=claims,
            durability=self.durability.observe(self.client, now, claims),
        )

    def _apply(self, replies: Sequence[Any], now: float) -> bool:
        """Fold the script's replies into the per-list state; rebuild changed queues."""
        steps = len(self.steps)
        lengths, tails, heads, keys = self._len, self._tails, self._heads, self._keys
        observe, forget = self.ages.observe, self.ages.forget
        dirty: set[int] = set()
        for c, (changes, tail_heads) in enumerate(replies):
            base = c * LISTS_PER_CALL - 1
            for j in range(0, len(changes), 2):
                i = base + changes[j]
                n = changes[j + 1]
                lengths[i] = n
                dirty.add(i // steps)
                if n == 0:
                    tails[i], heads[i] = _EMPTY_TAG, None
                    forget(keys[i])
            for j in range(0, len(tail_heads), 3):
                i = base + tail_heads[j]
                raw_head = tail_heads[j + 2]
                tail = _packed(tail_heads[j + 1] or b"")
                head = _packed(raw_head) if raw_head else None
                if tail != tails[i] or head != heads[i]:
                    heads[i] = head
                    tails[i] = observe(keys[i], now, tail, head) or tail
                    dirty.add(i // steps)
        if self._dirty_all:
            dirty = set(range(len(self._queues)))
            self._dirty_all = False
        for q in dirty:
            self._reads[q] = self._queue_read(q)
        self.first_seen.add(self.ages.take_dirty_keys())
        return bool(dirty)

    def _queue_read(self, q: int) -> QueueRead:
        start = q * len(self.steps)
        per: dict[int, int] = {}
        oldest: float | None = None
        for k, step in enumerate(self.steps, start=start):
            n = self._len[k]
            if n > 0:
                per[step] = n
                seen = self.ages.first_seen(self._keys[k])
                if seen is not None and (oldest is None or seen < oldest):
                    oldest = seen
        if not per:
            return EMPTY
        # Queues with the same lengths share one (read-only) mapping.
        shared = self._shapes.setdefault(tuple(per.items()), per)
        if len(self._shapes) > 4 * len(self._reads):
            self._shapes.clear()
        return QueueRead(sum(per.values()), shared, oldest)

    def flush(self) -> None:
        """Write pending first-seen changes now (on shutdown)."""
        self.first_seen.flush(self.client)

    # -- in flight, memory ------------------------------------------------------------

    def _resolve(self, tags: Sequence[bytes]) -> list[Any]:
        """Routes of in-flight tags (unacked.lua), flat; (None, None) when unreadable."""
        pipe = self.client.pipeline(transaction=False)
        for chunk in _chunks(tags, TAGS_PER_CALL):
            pipe.execute_command("EVALSHA", UNACKED_SHA, 1, self.unacked_key, *chunk)
        out: list[Any] = []
        for chunk, reply in zip(_chunks(tags, TAGS_PER_CALL), self._run(pipe), strict=True):
            out += reply if isinstance(reply, list) else [None, None] * len(chunk)
        return out

    def _sample_memory(self) -> None:
        # MEMORY USAGE walks the list: sampled every memory_sample_interval_seconds,
        # in round trips of their own (chunked, so thousands of lists never pile up
        # in one reply) so ordinary scrapes stay one round trip.
        steps = len(self.steps)
        nonempty = [i for i, n in enumerate(self._len) if n > 0]
        memory: dict[str, int] = {}
        for chunk in _chunks(nonempty, LISTS_PER_CALL):
            pipe = self.client.pipeline(transaction=False)
            for i in chunk:
                pipe.execute_command("MEMORY USAGE", self._keys[i], "SAMPLES", MEMORY_SAMPLES)
            for i, used in zip(chunk, self._run(pipe), strict=True):
                q = self._queues[i // steps]
                memory[q] = memory.get(q, 0) + _int(used)
        self._memory = memory

    # -- discovery ----------------------------------------------------------------------

    def discover(self) -> Discovery:
        """Queues from kombu's binding sets: they outlive workers, unlike worker reports."""
        found, example = discover(self.client, self.prefix, self.sep)
        self.discovery = found
        self.skip_log.report(found.skipped, example)
        return found

    def close(self) -> None:
        with contextlib.suppress(redis.RedisError):
            self.flush()
        self.client.close()
