"""Reading kombu's Redis layout: one pipelined round trip per scrape, read-only.

Nothing here writes to, deletes or moves a message: the only commands sent are
LLEN/LINDEX (inside a Lua script), HKEYS/HGET on `unacked`, INFO, MEMORY USAGE,
SCAN and SMEMBERS.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import redis

from batchctl.brokerurl import connect
from batchctl.claims import Claim, claim_key
from batchctl.config import BrokerConfig
from batchctl.redact import redact_url
from exporter.snapshot import (
    ListRead,
    count_unacked,
    is_task_queue,
    parse_binding,
    priority_list_name,
    route_of,
)

# Queues per script call: Redis runs a script atomically, so chunks keep each call
# short enough not to stall the broker (1,000 queues x 4 lists ~ a few ms).
QUEUES_PER_CALL = 1000
TAGS_PER_CALL = 1000
MEMORY_SAMPLES = 5


def _script(name: str) -> tuple[str, str]:
    text = resources.files("exporter").joinpath(name).read_text()
    return text, hashlib.sha1(text.encode()).hexdigest()


LISTS_SCRIPT, LISTS_SHA = _script("lists.lua")
UNACKED_SCRIPT, UNACKED_SHA = _script("unacked.lua")


def _glob_escape(text: str) -> str:
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


@dataclass(frozen=True)
class Discovery:
    """Task queues named by kombu's binding sets, and (exchange, routing_key) -> queue."""

    queues: frozenset[str] = frozenset()
    bindings: Mapping[tuple[str, str], str] = field(default_factory=dict)


@dataclass(frozen=True)
class BrokerRead:
    lists: Mapping[tuple[str, int], ListRead]
    unacked: Mapping[str, int]
    used_memory: int
    max_memory: int
    memory: Mapping[str, int]  # queue -> bytes, from the last memory sample
    claims: Mapping[str, Claim] = field(default_factory=dict)


def _exchange_of(key: str) -> str:
    # `_kombu.binding.<exchange>` or `_kombu.binding_permanent.<exchange>`
    for marker in (".binding.", ".binding_permanent."):
        head, sep, exchange = key.partition(marker)
        if sep and head == "_kombu":
            return exchange
    return ""


def _chunks(seq: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for i in range(0, len(seq), size):
        yield seq[i : i + size]


class BrokerReader:
    """Reads all queues in one pipelined round trip; caches what never changes.

    Not thread-safe: the collector serialises reads (one collection in flight).
    """

    def __init__(self, cfg: BrokerConfig, client: redis.Redis | None = None) -> None:
        self.cfg = cfg
        self.client = client if client is not None else connect(cfg)
        self.prefix = cfg.global_keyprefix
        self.steps = tuple(cfg.priority_steps)
        self.unacked_key = f"{self.prefix}unacked"
        # delivery tag -> queue, parsed once per tag; pruned to tags still in flight.
        self._routes: dict[str, str] = {}
        self._memory: dict[str, int] = {}
        # Lengths at the last read: the script reads head tags only of lists that grew.
        self._lengths: dict[tuple[str, int], int] = {}
        # The last layout, script replies and parsed lists, to skip work when unchanged.
        self._queues: list[str] = []
        self._keys: list[str] = []
        self._index: list[tuple[str, int]] = []
        self._replies: list[Any] = []
        self._lists: dict[tuple[str, int], ListRead] = {}
        self._memory_at = float("-inf")
        self.discovery = Discovery()

    @property
    def safe_url(self) -> str:
        return redact_url(self.cfg.url)

    def _run(self, pipe: redis.client.Pipeline) -> list[Any]:
        """Execute, loading our scripts once if Redis lost them (restart, SCRIPT FLUSH)."""
        commands = list(pipe.command_stack)
        results = pipe.execute(raise_on_error=False)
        if any(isinstance(r, redis.exceptions.NoScriptError) for r in results):
            self.client.script_load(LISTS_SCRIPT)
            self.client.script_load(UNACKED_SCRIPT)
            retry = self.client.pipeline(transaction=False)
            retry.command_stack = commands
            results = retry.execute(raise_on_error=False)
        for r in results:
            if isinstance(r, Exception):
                raise r
        return list(results)

    def _layout(self, queues: Sequence[str]) -> tuple[list[str], list[tuple[str, int]]]:
        """The list keys and their (queue, step), rebuilt only when the queues change."""
        queues = list(queues)
        if queues != self._queues:
            self._queues = queues
            self._keys = [priority_list_name(q, s, self.prefix) for q in queues for s in self.steps]
            self._index = [(q, s) for q in queues for s in self.steps]
            self._replies = []
        return self._keys, self._index

    def read(
        self, queues: Sequence[str], now: float, claim_queues: Sequence[str] = ()
    ) -> BrokerRead:
        keys, index = self._layout(queues)
        sample_memory = (
            self.cfg.memory_sample_interval_seconds >= 0
            and now - self._memory_at >= self.cfg.memory_sample_interval_seconds
        )

        pipe = self.client.pipeline(transaction=False)
        per_call = QUEUES_PER_CALL * len(self.steps)
        calls = 0
        last = self._lengths
        previous = [last.get(k, -1) for k in index]
        for start in range(0, len(keys), per_call):
            chunk = keys[start : start + per_call]
            pipe.execute_command(
                "EVALSHA", LISTS_SHA, len(chunk), *chunk, *previous[start : start + per_call]
            )
            calls += 1
        pipe.hkeys(self.unacked_key)
        pipe.info("memory")
        for q in claim_queues:
            pipe.hgetall(claim_key(q, self.prefix))
        results = self._run(pipe)

        replies = results[:calls]
        if replies == self._replies:
            # Nothing moved since the last scrape (the common case for idle batches): the
            # same mapping object tells the collector it may skip its per-list work too.
            lists = self._lists
        else:
            lists = self._parse_lists(replies, index)
            self._replies, self._lists = replies, lists
            self._lengths = {k: r.length for k, r in lists.items()}
        tags_now: list[str] = results[calls]
        info: Mapping[str, Any] = results[calls + 1]
        if sample_memory:
            self._sample_memory([k for k, r in lists.items() if r.length > 0])
            self._memory_at = now

        claims = {}
        for q, raw in zip(claim_queues, results[calls + 2 :], strict=True):
            claim = Claim.from_fields(q, raw)
            if claim is not None:
                claims[q] = claim
        self._update_routes(tags_now)
        return BrokerRead(
            lists=lists,
            unacked=count_unacked(tags_now, self._routes),
            used_memory=int(info.get("used_memory", 0)),
            max_memory=int(info.get("maxmemory", 0)),
            memory={q: self._memory.get(q, 0) for q in queues},
            claims=claims,
        )

    @staticmethod
    def _parse_lists(
        replies: Sequence[Any], index: Sequence[tuple[str, int]]
    ) -> dict[tuple[str, int], ListRead]:
        lists: dict[tuple[str, int], ListRead] = {}
        offset = 0
        empty = ListRead(0)
        for lengths, ends in replies:
            for i, n in enumerate(lengths, start=offset):
                lists[index[i]] = empty if n == 0 else ListRead(n)
            for j in range(0, len(ends), 3):
                key = index[offset + ends[j] - 1]
                lists[key] = ListRead(lists[key].length, ends[j + 1], ends[j + 2])
            offset += len(lengths)
        return lists

    def _sample_memory(self, nonempty: Sequence[tuple[str, int]]) -> None:
        # MEMORY USAGE walks the list: sampled every memory_sample_interval_seconds,
        # in a round trip of its own so ordinary scrapes stay one round trip.
        pipe = self.client.pipeline(transaction=False)
        for q, s in nonempty:
            key = priority_list_name(q, s, self.prefix)
            pipe.execute_command("MEMORY USAGE", key, "SAMPLES", MEMORY_SAMPLES)
        memory: dict[str, int] = {}
        for (q, _), used in zip(nonempty, self._run(pipe), strict=True):
            memory[q] = memory.get(q, 0) + int(used or 0)
        self._memory = memory

    def _update_routes(self, tags_now: Sequence[str]) -> None:
        current = set(tags_now)
        for gone in self._routes.keys() - current:
            del self._routes[gone]
        new = [t for t in tags_now if t not in self._routes]
        if not new:
            return
        pipe = self.client.pipeline(transaction=False)
        for chunk in _chunks(new, TAGS_PER_CALL):
            pipe.execute_command("EVALSHA", UNACKED_SHA, 1, self.unacked_key, *chunk)
        replies = self._run(pipe)
        bindings = self.discovery.bindings
        for chunk, reply in zip(_chunks(new, TAGS_PER_CALL), replies, strict=True):
            for j, tag in enumerate(chunk):
                exchange, routing_key = reply[2 * j], reply[2 * j + 1]
                if routing_key is None:  # acked between HKEYS and now
                    continue
                self._routes[tag] = route_of(exchange or "", routing_key, bindings)

    def discover(self) -> Discovery:
        """Queues from kombu's binding sets: they outlive workers, unlike worker reports."""
        patterns = [
            f"{_glob_escape(self.prefix)}_kombu.binding.*",
            f"{_glob_escape(self.prefix)}_kombu.binding_permanent.*",
        ]
        set_keys: list[str] = []
        for pattern in patterns:
            set_keys.extend(self.client.scan_iter(match=pattern, count=1000, _type="set"))
        if not set_keys:
            self.discovery = Discovery()
            return self.discovery
        pipe = self.client.pipeline(transaction=False)
        for key in set_keys:
            pipe.smembers(key)
        queues: set[str] = set()
        bindings: dict[tuple[str, str], str] = {}
        for key, members in zip(set_keys, pipe.execute(), strict=True):
            exchange = _exchange_of(key[len(self.prefix) :])
            for member in members:
                parsed = parse_binding(member)
                if parsed is None:
                    continue
                routing_key, _pattern, queue = parsed
                if is_task_queue(exchange, queue):
                    queues.add(queue)
                    bindings[(exchange, routing_key)] = queue
        self.discovery = Discovery(frozenset(queues), bindings)
        return self.discovery

    def close(self) -> None:
        self.client.close()
