"""In flight: messages delivered but not yet acknowledged, per queue, from kombu's `unacked`.

`unacked` maps a delivery tag to `[message, exchange, routing_key]` (JSON). Each tag is
resolved to its queue once, by a script that reads only the route at the end of the
value (exporter/broker/redis/unacked.lua), and remembered while the tag stays in the hash.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from exporter.broker.redis.discovery import display_name

# The routes of new tags, in chunks: (tags) -> flat [exchange, routing_key, ...] replies.
Resolve = Callable[[Sequence[bytes]], Sequence[Any]]
Tag = TypeVar("Tag", bound=Hashable)


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


class InFlight:
    """Counts per queue of the tags in `unacked`; the same Counter while nothing moved."""

    def __init__(self) -> None:
        self._routes: dict[bytes, str] = {}  # tag -> queue, pruned to tags in flight
        self._tags: list[bytes] | None = None
        self.counts: Counter[str] = Counter()

    def update(
        self, tags: list[bytes], resolve: Resolve, bindings: Mapping[tuple[bytes, bytes], str]
    ) -> Counter[str]:
        if tags == self._tags:
            return self.counts  # nothing acked or delivered
        self._tags = tags
        current = set(tags)
        for gone in self._routes.keys() - current:
            del self._routes[gone]
        new = [t for t in tags if t not in self._routes]
        if new:
            reply = resolve(new)
            for j, tag in enumerate(new):
                exchange, routing_key = reply[2 * j], reply[2 * j + 1]
                if routing_key is None:  # acked between HKEYS and now
                    continue
                # By binding, else by routing key (the queue name with Celery's default
                # direct exchanges).
                exchange, routing_key = unjson(exchange or b""), unjson(routing_key)
                queue = bindings.get((exchange, routing_key))
                self._routes[tag] = queue or display_name(routing_key)
        self.counts = count_unacked(tags, self._routes)
        return self.counts
