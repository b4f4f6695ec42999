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

import struct
from collections.abc import Iterable

# Tags remembered per list (tail first); beyond it the middle is thinned.
HISTORY = 1024
# Tags kept per list in the persisted value: the oldest few and the newest.
PERSISTED = 8
# A list's history: (tag, first_seen, tag, first_seen, ...), oldest first. Flat tuples:
# with 10,000 queues there are 40,000 of them, and a dict costs twice as much.
History = tuple[bytes | float, ...]
_ENTRY = struct.Struct("<Hd")


class AgeTracker:
    """Per list key: its History (tags and when each was first seen, the tail first)."""

    def __init__(self) -> None:
        self.lists: dict[bytes, History] = {}
        # Lists whose persisted value changed since the last `take_dirty`.
        self._dirty: set[bytes] = set()

    def first_seen(self, key: bytes) -> float | None:
        """When the list's tail (its oldest message) was first seen; None if unknown."""
        hist = self.lists.get(key)
        return hist[1] if hist else None  # type: ignore[return-value]

    def tags(self, key: bytes) -> dict[bytes, float]:
        """The remembered tags of a list and their first-seen times, oldest first."""
        hist = self.lists.get(key, ())
        return dict(zip(hist[0::2], hist[1::2], strict=True))  # type: ignore[arg-type]

    def observe(
        self, key: bytes, now: float, tail: bytes | None, head: bytes | None
    ) -> bytes | None:
        """The list's ends as read at `now` (head None: one message, or not read).
        Returns the history's own object for the tail (equal to `tail`): a caller that
        keeps it shares one object per tag (after a restart, the ones read back)."""
        if tail is None:
            self.forget(key)
            return None
        hist = self.lists.get(key, ())
        tags = hist[0::2]
        if tail in tags:
            # Everything remembered before the tail has been consumed.
            new = hist[2 * tags.index(tail) :]
        else:
            # A tail never seen: it was pushed before every message still in the list,
            # in particular before the head. The remembered tags older than it have
            # been consumed; they are dropped once a later tail is one we know.
            bound = hist[2 * tags.index(head) + 1] if head is not None and head in tags else now
            new = (tail, min(bound, now), *hist)  # type: ignore[type-var]
        if head is not None and head not in new[0::2]:
            new = (*new, head, now)
        if len(new) > 2 * HISTORY:
            new = new[:2] + new[-2 * (HISTORY - 1) :]
        if _view(new) != _view(hist):
            self._dirty.add(key)
        self.lists[key] = new
        return new[0]  # type: ignore[return-value]

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
        return {k: self.persisted(k) for k in self.take_dirty_keys()}

    def take_dirty_keys(self) -> set[bytes]:
        """The lists whose persisted value changed since the last call (encode them with
        `persisted` when they are written: a value waiting to be sent costs nothing)."""
        out, self._dirty = self._dirty, set()
        return out

    def persisted(self, key: bytes) -> bytes | None:
        """The value to persist for `key` now; None: delete it (unknown or empty)."""
        hist = self.lists.get(key)
        return encode(hist) if hist else None

    def seed(self, key: bytes, value: bytes) -> None:
        """Remembered tags of a previous process, before the first reading of `key`."""
        hist = decode(value)
        if hist:
            self.lists[key] = hist


def _view(hist: History) -> History:
    """What is persisted of a list: its oldest PERSISTED - 1 tags and its newest."""
    if len(hist) <= 2 * PERSISTED:
        return hist
    return hist[: 2 * (PERSISTED - 1)] + hist[-2:]


def encode(hist: History) -> bytes:
    """Compact: per tag, its length (2 bytes), its first-seen time (8), its bytes."""
    view = _view(hist)
    return b"".join(
        _ENTRY.pack(len(t[:65535]), s) + t[:65535]  # type: ignore[index, arg-type]
        for t, s in zip(view[0::2], view[1::2], strict=True)
    )


def decode(value: bytes) -> History:
    """The inverse of `encode`; () for anything unreadable (it is only a hint)."""
    out: list[bytes | float] = []
    pos = 0
    try:
        while pos < len(value):
            n, seen = _ENTRY.unpack_from(value, pos)
            pos += _ENTRY.size
            tag = value[pos : pos + n]
            if len(tag) != n or seen != seen:  # truncated, or NaN
                return ()
            out += (tag, seen)
            pos += n
    except struct.error:
        return ()
    return tuple(out)
