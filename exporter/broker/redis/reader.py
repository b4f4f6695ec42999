"""The Redis reader: kombu's layout in one pipelined round trip per scrape, bytes in.

The first implementation of `exporter.broker.protocol.BrokerReader`, read-only.

Nothing here writes to, deletes or moves a message or any of kombu's keys. The
commands sent are LLEN/LINDEX/LRANGE (inside Lua scripts), HKEYS/HGET on `unacked`,
ZRANGEBYSCORE on `unacked_index`, INFO, MEMORY USAGE, SCAN, SMEMBERS, HGETALL of
batchctl's claim records, and the one write the exporter does: HSET/HDEL/PEXPIRE of
its own hash `batchctl:first_seen` (after `global_keyprefix`), which keeps the ages
across restarts (ages.py, firstseen.py).

The queue lists are read by lists.lua in the one round trip; when a list's head moved,
locate.lua counts what was pushed (lists.py says how; one more round trip, only then).

Least privilege (docs/operations.md): a command the broker's user may not run (INFO,
our writes) costs what it would have told (memory, ages across restarts), logged once
with the permission to add; the read of the queues is what `celery_broker_up` says.

Every reply is read as bytes: names, tags and routes that are not UTF-8, and keys of
other types under kombu's names, never fail a scrape.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Callable, Sequence
from importlib import resources
from typing import Any, TypeVar

import redis

from batchctl.brokerparse import parse_broker_urls
from batchctl.brokerurl import connect, refused, say_refused, user_of
from batchctl.claims import Claim, claim_key
from batchctl.config import BrokerConfig
from batchctl.redact import redact_url
from exporter.broker.protocol import BrokerRead, QueueWork
from exporter.broker.redis import firstseen
from exporter.broker.redis.discovery import Discovery, SkipLog, discover
from exporter.broker.redis.durability import DurabilityWatch
from exporter.broker.redis.firstseen import AGES_KEY, FirstSeenStore
from exporter.broker.redis.inflight import PER_TAG, InFlight
from exporter.broker.redis.lists import LOCATE_BOUND, LOCATE_BUDGET, Lists, chunks

TAGS_PER_CALL = 1000
MEMORY_SAMPLES = 5
LISTS_PER_CALL = 500  # the chunk lists.py sends per lists.lua call (re-exported)


def _script(*names: str) -> tuple[str, str]:
    text = "".join(resources.files(__package__).joinpath(n).read_text() for n in names)
    return text, hashlib.sha1(text.encode()).hexdigest()


T = TypeVar("T")
# envelope.lua is each list script's prelude (tag(), redelivered()).
LISTS_SCRIPT, LISTS_SHA = _script("envelope.lua", "lists.lua")
LOCATE_SCRIPT, LOCATE_SHA = _script("envelope.lua", "locate.lua")
UNACKED_SCRIPT, UNACKED_SHA = _script("unacked.lua")
SCRIPTS = (LISTS_SCRIPT, LOCATE_SCRIPT, UNACKED_SCRIPT)


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
        self.unacked_key = self.prefix + b"unacked"
        self.unacked_index_key = self.prefix + b"unacked_index"
        self.ages_key = self.prefix + AGES_KEY.encode()
        self.discovery = Discovery()
        self.skip_log = SkipLog()
        # The queues' lists: layout, lengths, ends and ages between reads.
        self.lists = Lists(self.prefix, cfg.sep.encode(), cfg.priority_steps)
        self.ages = self.lists.ages
        self.inflight = InFlight()
        self._memory: dict[str, int] = {}
        self._memory_at = float("-inf")
        # Whether Redis keeps the claims across a restart (the snapshot says so).
        self.durability = DurabilityWatch()
        self.first_seen = FirstSeenStore(self.ages_key, self.ages)
        self._writes_sent = 0

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
            for script in SCRIPTS:
                self.client.script_load(script)
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

    # -- the scrape -----------------------------------------------------------------

    def read(
        self,
        queues: Sequence[str],
        now: float,
        claim_queues: Sequence[str] = (),
        clock: Callable[[], float] | None = None,
    ) -> BrokerRead:
        return self._guarded(lambda: self._read(queues, now, claim_queues, clock=clock))

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
        clock: Callable[[], float] | None = None,
    ) -> BrokerRead:
        lists = self.lists
        self.first_seen.add(lists.layout(queues, self.raw_name))
        if not self.first_seen.seeded:
            self.first_seen.seed(self.client, lists.keys)
        pipe = self.client.pipeline(transaction=False)
        # batchctl's own first-seen writes go first, in the same round trip.
        writing = self.first_seen.queue(pipe, now, firstseen.WRITES_PER_READ)
        self._writes_sent = len(pipe.command_stack)
        calls = lists.calls()
        for blob, state, olds, restored in calls:
            pipe.execute_command("EVALSHA", LISTS_SHA, 0, blob, state, olds, restored)
        pipe.hkeys(self.unacked_key)
        # Delivered longer ago than the visibility timeout: what kombu would restore.
        pipe.zrangebyscore(self.unacked_index_key, "-inf", now - self.cfg.visibility_timeout)
        pipe.info("memory")
        for q in claim_queues:
            pipe.hgetall(claim_key(q, self.cfg.global_keyprefix))
        try:
            results = self._run(pipe)
        except redis.RedisError:
            self.first_seen.requeue(writing)
            raise
        self._check_writes(results[: self._writes_sent], writing)
        results = results[self._writes_sent :]
        n = len(calls)
        for reply in results[:n]:
            if isinstance(reply, Exception):
                raise reply

        # A message this read finds new was pushed before its answer came back, not
        # before `now` (taken before the round trip): dated by `now` it would be older
        # than it is by up to the read's own time. Dated on the answer's side, its age is
        # never above the truth (and at most a read's time below it; age_of clamps at 0).
        def answered() -> float:
            return now if clock is None else max(now, clock())

        self._locate(lists.apply(results[:n], answered()), answered)
        changed = lists.finish()
        self.first_seen.add(self.ages.take_dirty_keys())
        # An `unacked` of another type (WRONGTYPE) reads as empty, as kombu would find it.
        tags, late, info = results[n : n + 3]
        used, most = self._memory_info(info)
        if (
            sample_memory
            and self.cfg.memory_sample_interval_seconds >= 0
            and now - self._memory_at >= self.cfg.memory_sample_interval_seconds
        ):
            self._sample_memory()
            self._memory_at = now
        claims = {}
        for q, raw in zip(claim_queues, results[n + 3 :], strict=True):
            claim = Claim.from_fields(q, raw) if isinstance(raw, dict) else None
            if claim is not None:
                claims[q] = claim
        flight = self.inflight.update(
            tags if isinstance(tags, list) else [],
            self._resolve,
            self.discovery.bindings,
            now,
            late if isinstance(late, list) else (),
        )
        return BrokerRead(
            queues=lists.queues,
            reads=lists.reads,
            changed=changed,
            unacked=flight.unacked,
            used_memory=used,
            max_memory=most,
            memory=self._memory,
            claims=claims,
            durability=self.durability.observe(self.client, now, claims),
            scheduled=flight.scheduled,
            overdue=flight.overdue,
        )

    def _locate(self, pending: list[int], answered: Callable[[], float]) -> None:
        """locate.lua for the lists whose head moved: round trips until every one has its
        answer, each call bounded (LOCATE_BUDGET messages read)."""
        while pending:
            blob = self.lists.locate_request(pending)
            pipe = self.client.pipeline(transaction=False)
            pipe.execute_command("EVALSHA", LOCATE_SHA, 0, blob, LOCATE_BOUND, LOCATE_BUDGET)
            (reply,) = self._run(pipe)
            if isinstance(reply, Exception):
                raise reply
            done = pending[: len(reply)] if reply else pending[:1]
            # Dated on the answer's side, as the read's own (see _read).
            self.lists.located(done, list(reply) or [-2], answered())
            pending = pending[len(done) :]

    def _check_writes(self, replies: Sequence[Any], writing: list[bytes]) -> None:
        """Our first-seen writes refused (a user that may not write): stop sending them."""
        if any(refused(r) for r in replies):
            say_refused(
                "HSET/HDEL/PEXPIRE " + self.ages_key.decode(errors="replace"),
                f"+hset +hdel +pexpire on ~{self.ages_key.decode(errors='replace')}",
                "ages across an exporter restart (they start from the first read after it)",
                user_of(self.client),
            )
            self.first_seen.disable()

    def _memory_info(self, info: Any) -> tuple[int | None, int | None]:
        """used_memory and maxmemory from INFO memory; unknown when INFO is refused."""
        if isinstance(info, dict):
            return int(info.get("used_memory", 0)), int(info.get("maxmemory", 0))
        if refused(info):
            say_refused(
                "INFO",
                "+info",
                "celery_broker_memory_used_bytes, celery_broker_memory_max_bytes and "
                "whether the broker keeps its data across a restart",
                user_of(self.client),
                info,
            )
            return None, None
        raise info if isinstance(info, Exception) else TypeError("INFO reply")

    def flush(self) -> None:
        """Write pending first-seen changes now (on shutdown)."""
        self.first_seen.flush(self.client)

    # -- in flight, memory ------------------------------------------------------------

    def _resolve(self, tags: Sequence[bytes]) -> list[Any]:
        """Routes and ETAs of in-flight tags (unacked.lua), flat; None when unreadable."""
        pipe = self.client.pipeline(transaction=False)
        for chunk in chunks(tags, TAGS_PER_CALL):
            pipe.execute_command("EVALSHA", UNACKED_SHA, 1, self.unacked_key, *chunk)
        out: list[Any] = []
        for chunk, reply in zip(chunks(tags, TAGS_PER_CALL), self._run(pipe), strict=True):
            out += reply if isinstance(reply, list) else [None] * PER_TAG * len(chunk)
        return out

    def _sample_memory(self) -> None:
        # MEMORY USAGE walks the list: sampled every memory_sample_interval_seconds,
        # in round trips of their own (chunked, so thousands of lists never pile up
        # in one reply) so ordinary scrapes stay one round trip.
        queues = self.lists.queues
        memory: dict[str, int] = {}
        for chunk in chunks(self.lists.nonempty(), LISTS_PER_CALL):
            pipe = self.client.pipeline(transaction=False)
            for _, key in chunk:
                pipe.execute_command("MEMORY USAGE", key, "SAMPLES", MEMORY_SAMPLES)
            for (q, _), used in zip(chunk, self._run(pipe), strict=True):
                memory[queues[q]] = memory.get(queues[q], 0) + _int(used)
        self._memory = memory

    # -- discovery ----------------------------------------------------------------------

    def discover(self) -> Discovery:
        """Queues from kombu's binding sets: they outlive workers, unlike worker reports."""
        found, example = discover(self.client, self.prefix, self.lists.sep)
        self.discovery = found
        self.skip_log.report(found.skipped, example)
        return found

    def close(self) -> None:
        with contextlib.suppress(redis.RedisError):
            self.flush()
        self.client.close()
