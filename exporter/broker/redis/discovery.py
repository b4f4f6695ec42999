"""Queue discovery from kombu's binding sets, read as bytes: hostile content never fails it.

kombu keeps, per exchange, a set `_kombu.binding.<exchange>` (and, since 5.7,
`_kombu.binding_permanent.<exchange>`) whose members are
`routing_key{sep}pattern{sep}queue`. Keys and members are read as bytes:

- a queue name that is valid UTF-8 is exported as it is;
- one that is not is exported under an escaped name, each undecodable byte written
  `\\xNN` (Python's `backslashreplace`), e.g. `b"q\\xff"` -> `q\\xff`; when that name is
  taken by a real queue, the escaped one is skipped (reason `escaped_name_taken`);
- a member that is not three `sep`-separated parts, or names no queue, is skipped
  (`malformed_binding`), as is a queue name longer than MAX_NAME_BYTES
  (`name_too_long`).

Skips are counted per reason (`celery_exporter_queues_skipped{reason}`) and logged at
most once per reason per hour.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import redis

from batchctl.log import get_logger
from exporter.broker.redis.keys import is_task_queue, parse_binding

log = get_logger("batchctl.discovery")

SKIP_REASONS = ("escaped_name_taken", "malformed_binding", "name_too_long")
MAX_NAME_BYTES = 1024
LOG_EVERY_SECONDS = 3600.0
_MARKERS = (b"_kombu.binding.", b"_kombu.binding_permanent.")


def display_name(raw: bytes) -> str:
    """The name a queue is exported under: its UTF-8 text, else `\\xNN` escapes."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("utf-8", "backslashreplace")


def _glob_escape(raw: bytes) -> bytes:
    return re.sub(rb"([*?\[\]\\])", rb"\\\1", raw)


@dataclass(frozen=True)
class Discovery:
    """Task queues named by kombu's binding sets and how they are routed."""

    # Exported name -> the queue's raw name in Redis.
    queues: Mapping[str, bytes] = field(default_factory=dict)
    # (exchange, routing_key) as raw bytes -> exported queue name.
    bindings: Mapping[tuple[bytes, bytes], str] = field(default_factory=dict)
    # reason -> how many queues (or members) were left out.
    skipped: Mapping[str, int] = field(default_factory=dict)


class SkipLog:
    """One log line per reason per hour, whatever the number of scrapes."""

    def __init__(self, every: float = LOG_EVERY_SECONDS) -> None:
        self.every = every
        self._last: dict[str, float] = {}

    def report(self, skipped: Mapping[str, int], example: Mapping[str, str]) -> None:
        now = time.monotonic()
        for reason, count in skipped.items():
            if count and now - self._last.get(reason, float("-inf")) >= self.every:
                self._last[reason] = now
                log.warning(
                    "queues skipped", reason=reason, count=count, example=example.get(reason, "")
                )


def _exchange_of(key: bytes, prefix: bytes) -> bytes | None:
    body = key[len(prefix) :] if key.startswith(prefix) else key
    for marker in _MARKERS:
        if body.startswith(marker):
            return body[len(marker) :]
    return None


def build_discovery(
    members_by_key: Iterable[tuple[bytes, Iterable[bytes]]], prefix: bytes, sep: bytes
) -> tuple[Discovery, dict[str, str]]:
    """Pure: binding sets' members -> Discovery, and an example per skip reason."""
    skipped: Counter[str] = Counter()
    example: dict[str, str] = {}
    by_raw: dict[bytes, str] = {}
    raw_bindings: dict[tuple[bytes, bytes], bytes] = {}

    def skip(reason: str, what: bytes) -> None:
        skipped[reason] += 1
        example.setdefault(reason, display_name(what[:80]))

    for key, members in members_by_key:
        exchange = _exchange_of(key, prefix)
        if exchange is None:
            continue
        ex_text = display_name(exchange)
        for member in members:
            parsed = parse_binding(member, sep)
            if parsed is None:
                skip("malformed_binding", member)
                continue
            routing_key, _pattern, raw = parsed
            if len(raw) > MAX_NAME_BYTES:
                skip("name_too_long", raw)
                continue
            name = by_raw.get(raw)
            if name is None:
                name = display_name(raw)
                if not is_task_queue(ex_text, name):
                    continue
                by_raw[raw] = name
            raw_bindings[(exchange, routing_key)] = raw
    # Escaped names must not shadow a real one: the real queue keeps its name.
    real = {name for raw, name in by_raw.items() if name.encode("utf-8", "surrogatepass") == raw}
    queues: dict[str, bytes] = {}
    for raw, name in sorted(by_raw.items()):
        if name in queues or (name in real and name.encode() != raw):
            skip("escaped_name_taken", raw)
            continue
        queues[name] = raw
    exported = {raw: name for name, raw in queues.items()}
    bindings = {k: exported[raw] for k, raw in raw_bindings.items() if raw in exported}
    counts = {reason: skipped.get(reason, 0) for reason in SKIP_REASONS}
    return Discovery(queues, bindings, counts), example


def discover(client: redis.Redis, prefix: bytes, sep: bytes) -> tuple[Discovery, dict[str, str]]:
    """SCAN for the binding sets, SMEMBERS each: every reply read as bytes."""
    patterns = [_glob_escape(prefix) + marker + b"*" for marker in _MARKERS]
    set_keys: list[bytes] = []
    for pattern in patterns:
        set_keys.extend(client.scan_iter(match=pattern, count=1000, _type="set"))
    if not set_keys:
        return build_discovery([], prefix, sep)
    pipe = client.pipeline(transaction=False)
    for key in set_keys:
        pipe.smembers(key)
    replies: list[Any] = pipe.execute(raise_on_error=False)
    # A set replaced by another type between SCAN and SMEMBERS reads as empty.
    pairs = [(k, r if isinstance(r, set) else ()) for k, r in zip(set_keys, replies, strict=True)]
    return build_discovery(pairs, prefix, sep)
