"""In flight: messages delivered but not yet acknowledged, per queue, from kombu's `unacked`.

`unacked` maps a delivery tag to `[message, exchange, routing_key]` (JSON). Each tag is
resolved once, by a script that reads only the end of the value
(exporter/broker/redis/unacked.lua): its queue, and its `headers.eta` when Celery
scheduled it (an ETA or countdown task, task protocol 2). Both are remembered while the
tag stays in the hash, so a read costs no parsing for tags already seen; whether an ETA
is still in the future is compared at every read.

Of the in-flight messages, two kinds are counted apart (docs/design.md, "ETA tasks" and
"Stranded in-flight work"):

- **overdue**: delivered longer ago than kombu's `visibility_timeout` (the tag's score
  in `unacked_index`): any running worker of the broker restores them to their queue
  (kombu's `restore_visible`); while none runs they stay where they are;
- **scheduled**: not overdue, with an ETA still in the future at the read: a worker
  holds them until then, outside its prefetch limit.

Protocol 1 messages (Celery < 4, or `task_protocol = 1`) keep the ETA in the body,
which the script does not decode: they count as ordinary in-flight work, the side that
never under-provisions.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Collection, Hashable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple, TypeVar

from exporter.broker.redis.discovery import display_name

# The routes of new tags, in chunks: (tags) -> flat [exchange, routing_key, eta, ...].
Resolve = Callable[[Sequence[bytes]], Sequence[Any]]
Tag = TypeVar("Tag", bound=Hashable)
# Values per tag in the script's reply.
PER_TAG = 3


class InFlightRead(NamedTuple):
    """Per queue: in flight, of which scheduled (future ETA) and overdue (older than the
    visibility timeout). Each the same object as at the previous read while unchanged."""

    unacked: Counter[str]
    scheduled: Counter[str]
    overdue: Counter[str]


def count_unacked(tags: Iterable[Tag], routes: Mapping[Tag, str]) -> Counter[str]:
    """In-flight messages per queue, from the unacked tags and the tag -> queue cache."""
    return Counter(routes[t] for t in tags if t in routes)


def unjson(raw: bytes) -> bytes:
    """A JSON string's text as the script found it -> its bytes (kombu writes the route
    with json.dumps, so 'café' arrives as 'caf\\u00e9')."""
    if b"\\" not in raw:
        return raw
    try:
        text = json.loads(b'"' + raw + b'"')
    except ValueError:
        return raw
    return str(text).encode("utf-8", "surrogateescape")


def parse_eta(raw: object) -> float | None:
    """Celery's `headers.eta` (ISO 8601, e.g. '2026-12-07T10:00:00.123456+00:00') ->
    epoch seconds; None when absent or unreadable. A naive time is taken as UTC, which
    is what Celery writes with its default `enable_utc`."""
    if not isinstance(raw, bytes | str) or not raw:
        return None
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        return None
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.timestamp()


def _same(new: Counter[str], old: Counter[str]) -> Counter[str]:
    return old if new == old else new


class InFlight:
    """Counts per queue of the tags in `unacked`; the same Counters while nothing moved."""

    def __init__(self) -> None:
        self._routes: dict[bytes, str] = {}  # tag -> queue, pruned to tags in flight
        self._etas: dict[bytes, float] = {}  # tag -> its ETA (epoch s), tags with one
        self._tags: list[bytes] | None = None
        self.counts: Counter[str] = Counter()
        self.scheduled: Counter[str] = Counter()
        self.overdue: Counter[str] = Counter()

    def update(
        self,
        tags: list[bytes],
        resolve: Resolve,
        bindings: Mapping[tuple[bytes, bytes], str],
        now: float = 0.0,
        overdue: Collection[bytes] = (),
    ) -> InFlightRead:
        """`tags` (HKEYS unacked) at `now`, with `overdue` the tags whose score in
        `unacked_index` is older than the visibility timeout."""
        if tags != self._tags:
            self._tags = tags
            current = set(tags)
            for gone in self._routes.keys() - current:
                del self._routes[gone]
                self._etas.pop(gone, None)
            new = [t for t in tags if t not in self._routes]
            if new:
                self._learn(new, resolve(new), bindings)
            self.counts = _same(count_unacked(tags, self._routes), self.counts)
        late = set(overdue) if overdue else set()
        routes = self._routes
        self.overdue = _same(count_unacked(late, routes), self.overdue)
        due = (t for t, eta in self._etas.items() if eta > now and t not in late)
        self.scheduled = _same(count_unacked(due, routes), self.scheduled)
        return InFlightRead(self.counts, self.scheduled, self.overdue)

    def _learn(
        self,
        new: Sequence[bytes],
        reply: Sequence[Any],
        bindings: Mapping[tuple[bytes, bytes], str],
    ) -> None:
        for j, tag in enumerate(new):
            exchange, routing_key, eta = reply[PER_TAG * j : PER_TAG * j + PER_TAG]
            if routing_key is None:  # acked between HKEYS and now
                continue
            # By binding, else by routing key (the queue name with Celery's default
            # direct exchanges).
            exchange, routing_key = unjson(exchange or b""), unjson(routing_key)
            queue = bindings.get((exchange, routing_key))
            self._routes[tag] = queue or display_name(routing_key)
            at = parse_eta(eta)
            if at is not None:
                self._etas[tag] = at
