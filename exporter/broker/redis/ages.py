"""The age of the oldest waiting message, from what each read saw pushed (pure).

Celery messages carry no publish time, so a message is dated by the read that first
counted it. kombu's lists are FIFO: producers LPUSH at the head, consumers pop the tail
(BRPOP). So per list we keep *segments*, oldest first: how many of the messages now in
the list were pushed before each read that counted them, and that read's time. A read
learns how many were pushed since the one before (`pushes`: the distance from the new
head to the previous one, found by exporter/broker/redis/locate.lua), and how many kombu
put back at the tail (`restored`: messages marked redelivered, from a warm shutdown or
restore_visible); the rest of the change in length is what consumers took, from the
oldest segments first. The tail is in the oldest segment left, so

    age = now - (time of the oldest segment)

is never above the true age of the oldest waiting message and never more than one
collection interval below it: a message counted at read k was pushed after read k-1.
Whether the list grows, drains or both, and for each priority list on its own (a
queue's age is that of its oldest list).

Where a read cannot tell (the previous head not found within the locate bound, messages
put back in a row beyond the count), it assumes what makes the age smaller: every
message of unknown date is dated now. Messages put back at the tail are dated when
first counted, since their publish time is unknown.

The segments survive a restart: `encode`/`decode` turn a list's state into a small
value that the reader keeps in its own Redis hash (firstseen.py); a new process goes on
from there (the previous head is found in the list again).
Pure: no I/O, no clock (callers pass `now`).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

# Segments kept per list in memory, and in the persisted value; beyond them adjacent
# segments are merged (dated by the later one: a lower bound, a wider interval).
HISTORY = 1024
PERSISTED = 32
_HEAD = struct.Struct("<BH")
_SEGMENT = struct.Struct("<dI")
_VERSION = 2


class ListAge(tuple):  # type: ignore[type-arg]
    """One list: its head's tag at the last read, then its segments, oldest first:
    (head, first_seen, count, first_seen, count, ...), counts summing to the list's
    length. One flat tuple per list: with 10,000 queues there are 40,000 of them."""

    __slots__ = ()

    def __new__(cls, head: bytes | None, segments: tuple[float | int, ...]) -> ListAge:
        return super().__new__(cls, (head, *segments))

    @property
    def head(self) -> bytes | None:
        return self[0]  # type: ignore[no-any-return]

    @property
    def segments(self) -> tuple[float | int, ...]:
        return self[1:]  # type: ignore[no-any-return]

    @property
    def length(self) -> int:
        return sum(self[2::2])

    @property
    def oldest(self) -> float:
        return float(self[1])


def advance(
    before: ListAge | None,
    now: float,
    length: int,
    head: bytes | None,
    pushes: int | None,
    restored: int = 0,
) -> ListAge | None:
    """The list's state after a read at `now` that found `length` messages with `head`
    at the front; `pushes` pushed at the head since `before` (None: unknown, all dated
    now), `restored` put back at the tail (an upper bound). None for an empty list."""
    if length <= 0:
        return None
    if before is None or pushes is None:
        return ListAge(head, (now, length))
    old = before.length
    p = max(0, min(pushes, length))
    r = max(0, restored)
    taken = old + p + r - length  # popped from the tail
    if taken < 0:  # grew at the tail by more than the marks said: dated now too
        r, taken = r - taken, 0
    if taken > old or p + r > length:
        # More taken than there was: an estimate was too high. Date by what is sure.
        return ListAge(head, (now, length))
    segs = list(_drop_oldest(before.segments, taken))
    if r:
        segs[:0] = [now, r]
    if p:
        if segs and segs[-2] == now:
            segs[-1] += p
        else:
            segs += [now, p]
    return ListAge(head, _thin(tuple(segs), HISTORY))


def _drop_oldest(segs: tuple[float | int, ...], n: int) -> tuple[float | int, ...]:
    i = 0
    while n > 0 and i < len(segs):
        count = int(segs[i + 1])
        if count > n:
            return (segs[i], count - n, *segs[i + 2 :])
        n -= count
        i += 2
    return segs[i:]


def _thin(segs: tuple[float | int, ...], cap: int) -> tuple[float | int, ...]:
    """At most `cap` segments: the oldest and the newest kept, the middle ones merged
    in runs, each run dated by its newest (the later time: never an older date)."""
    k = len(segs) // 2
    if k <= cap:
        return segs
    middle = k - 2
    groups = cap - 2
    out: list[float | int] = [segs[0], segs[1]]
    for g in range(groups):
        lo = 1 + g * middle // groups
        hi = 1 + (g + 1) * middle // groups
        out += [segs[2 * hi - 2], sum(int(c) for c in segs[2 * lo + 1 : 2 * hi : 2])]
    out += [segs[-2], segs[-1]]
    return tuple(out)


class AgeTracker:
    """Per list key: its `ListAge`, and which lists' persisted values changed."""

    def __init__(self) -> None:
        self.lists: dict[bytes, ListAge] = {}
        # Lists whose persisted value changed since the last `take_dirty_keys`.
        self._dirty: set[bytes] = set()

    def first_seen(self, key: bytes) -> float | None:
        """When the list's oldest message was first counted; None if unknown or empty."""
        state = self.lists.get(key)
        return state.oldest if state is not None else None

    def head(self, key: bytes) -> bytes | None:
        """The head's tag at the last read (or the persisted one after a restart)."""
        state = self.lists.get(key)
        return state.head if state is not None else None

    def known(self, key: bytes) -> bool:
        return key in self.lists

    def observe(
        self,
        key: bytes,
        now: float,
        length: int,
        head: bytes | None,
        pushes: int | None,
        restored: int = 0,
    ) -> None:
        """A read of `key` at `now` (see `advance`)."""
        before = self.lists.get(key)
        after = advance(before, now, length, head, pushes, restored)
        if after is None:
            self.forget(key)
            return
        self.lists[key] = after
        if before is None or _view(after) != _view(before):
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
        return {k: self.persisted(k) for k in self.take_dirty_keys()}

    def take_dirty_keys(self) -> set[bytes]:
        """The lists whose persisted value changed since the last call (encode them with
        `persisted` when they are written: a value waiting to be sent costs nothing)."""
        out, self._dirty = self._dirty, set()
        return out

    def persisted(self, key: bytes) -> bytes | None:
        """The value to persist for `key` now; None: delete it (unknown or empty)."""
        state = self.lists.get(key)
        return encode(state) if state is not None else None

    def seed(self, key: bytes, value: bytes) -> None:
        """The state a previous process left, before the first reading of `key`."""
        state = decode(value)
        if state is not None:
            self.lists[key] = state


def _view(state: ListAge) -> ListAge:
    """What is persisted of a list."""
    return ListAge(state.head, _thin(state.segments, PERSISTED))


def encode(state: ListAge) -> bytes:
    """Compact: a version byte, the head tag (2-byte length, bytes), then per segment
    its first-seen time (8 bytes) and count (4)."""
    head = (state.head or b"")[:65535]
    view = _thin(state.segments, PERSISTED)
    return (
        _HEAD.pack(_VERSION, len(head))
        + head
        + b"".join(
            _SEGMENT.pack(float(t), int(c)) for t, c in zip(view[0::2], view[1::2], strict=True)
        )
    )


def decode(value: bytes) -> ListAge | None:
    """The inverse of `encode`; None for anything unreadable, earlier formats included
    (it is only a hint: the list is then dated from now)."""
    try:
        version, n = _HEAD.unpack_from(value, 0)
    except struct.error:
        return None
    pos = _HEAD.size + n
    body = value[pos:]
    if version != _VERSION or len(value) < pos or not body or len(body) % _SEGMENT.size:
        return None
    segs: list[float | int] = []
    for at in range(0, len(body), _SEGMENT.size):
        seen, count = _SEGMENT.unpack_from(body, at)
        if seen != seen or count <= 0:  # NaN, or an empty segment
            return None
        segs += [seen, count]
    return ListAge(value[_HEAD.size : pos] or None, tuple(segs))
