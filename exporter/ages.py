"""The age of the oldest waiting message: first-seen times of the tags at each list's ends.

Celery messages carry no publish time, so a message is dated by when batchctl first
saw it. Per list we remember, in push order (oldest first), the tags seen at its tail
or head and when each was first seen. The first-seen time is never earlier than the
push, so the age (now minus the first-seen time of the tail) is a lower bound:

- exact to one scrape interval for a message that was the newest of its list at some
  scrape (it was pushed since the scrape before);
- for a tail we never saw (consumers moved past the remembered messages), it is at
  least as old as the current head, which was pushed after it: its first-seen time is
  taken as the head's (or now, when the head is new too);
- a queue's age is that of its oldest list tail, across all priority lists.

Remembered times survive a restart: `encode`/`decode` turn each list's remembered
tags into a small value that the reader keeps in its own Redis hash (see broker.py).
Pure: no I/O, no clock (callers pass `now`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable

# Tags remembered per list (tail first); beyond it the middle is thinned.
HISTORY = 1024
# Tags kept per list in the persisted value: the oldest few and the newest.
PERSISTED = 8


class AgeTracker:
    """Per list key: tag -> first-seen time, in push order (the tail first)."""

    def __init__(self) -> None:
        self.lists: dict[bytes, dict[bytes, float]] = {}
        # Lists whose persisted value changed since the last `take_dirty`.
        self._dirty: set[bytes] = set()

    def first_seen(self, key: bytes) -> float | None:
        """When the list's tail (its oldest message) was first seen; None if unknown."""
        hist = self.lists.get(key)
        if not hist:
            return None
        return next(iter(hist.values()))

    def observe(self, key: bytes, now: float, tail: bytes | None, head: bytes | None) -> None:
        """The list's ends as read at `now` (head None: one message, or not read)."""
        if tail is None:
            self.forget(key)
            return
        hist = self.lists.get(key)
        if hist is None:
            hist = self.lists[key] = {}
        before = _view(hist)
        if tail in hist:
            if next(iter(hist)) != tail:
                # Everything remembered before the tail has been consumed.
                items = list(hist.items())
                start = next(i for i, (t, _) in enumerate(items) if t == tail)
                hist.clear()
                hist.update(items[start:])
        else:
            # A tail never seen: it was pushed before every message still in the list,
            # in particular before the head. The remembered tags older than it have
            # been consumed; they are dropped once a later tail is one we know.
            bound = hist[head] if head is not None and head in hist else now
            new = {tail: min(bound, now)}
            new.update(hist)
            hist.clear()
            hist.update(new)
        if head is not None and head not in hist:
            hist[head] = now
        if len(hist) > HISTORY:
            items = list(hist.items())
            hist.clear()
            hist.update(items[:1] + items[-(HISTORY - 1) :])
        if _view(hist) != before:
            self._dirty.add(key)

    def forget(self, key: bytes) -> None:
        if self.lists.pop(key, None) is not None:
            self._dirty.add(key)

    def retain(self, keys: Iterable[bytes]) -> None:
        """Forget lists no longer read (the persisted values are left to their TTL)."""
        keep = set(keys)
        for key in [k for k in self.lists if k not in keep]:
            del self.lists[key]
            self._dirty.discard(key)

    def take_dirty(self) -> dict[bytes, bytes | None]:
        """List key -> its new persisted value (None: delete it), since the last call."""
        out = {k: (encode(self.lists[k]) if self.lists.get(k) else None) for k in self._dirty}
        self._dirty.clear()
        return out

    def seed(self, key: bytes, value: bytes) -> None:
        """Remembered tags of a previous process, before the first reading of `key`."""
        hist = decode(value)
        if hist:
            self.lists[key] = hist


def _view(hist: dict[bytes, float]) -> tuple[tuple[bytes, float], ...]:
    """What is persisted of a list: its oldest PERSISTED - 1 tags and its newest."""
    items = list(hist.items())
    if len(items) <= PERSISTED:
        return tuple(items)
    return tuple(items[: PERSISTED - 1] + items[-1:])


def encode(hist: dict[bytes, float]) -> bytes:
    return json.dumps([[t.decode("latin-1"), round(s, 3)] for t, s in _view(hist)]).encode()


def decode(value: bytes) -> dict[bytes, float]:
    """The inverse of `encode`; {} for anything unreadable (it is only a hint)."""
    try:
        rows = json.loads(value)
        return {str(t).encode("latin-1"): float(s) for t, s in rows}
    except (ValueError, TypeError, UnicodeError):
        return {}
