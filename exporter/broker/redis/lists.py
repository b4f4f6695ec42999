"""kombu's queue lists between reads: their keys, lengths and ends, and their ages.

The reader (reader.py) sends what `calls` builds to lists.lua in its one pipelined round
trip, folds the replies in with `apply`, and when some list's head moved, asks
locate.lua how many messages were pushed (`locate_request` / `located`): usually one
more round trip, only for lists that changed, each call bounded in work. Then `reads`
has one `QueueRead` per queue, rebuilt only where something moved.

A list whose length did not change has its tail re-checked every VERIFY_EVERY reads (a
push and a pop between two reads leave the length as it was), and at every read while
it is *hot* (its length or ends moved within HOT_READS reads) or its tail is a message
kombu put back (so that put-back messages are counted once). Not thread-safe.
"""

from __future__ import annotations

import bisect
import struct
from array import array
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from exporter.broker.protocol import EMPTY, QueueRead
from exporter.broker.redis.ages import AgeTracker
from exporter.broker.redis.keys import list_key

# Lists per script call: Redis runs a script atomically, so chunks keep each call
# short and the broker never stalls: 500 lists take ~1.2 ms of Redis time (at most
# ~2 ms measured; 1,000 took 2-3 ms, and over 5 ms on a loaded machine), at no cost
# to the scrape (benchmarks/README.md).
LISTS_PER_CALL = 500
VERIFY_EVERY = 4
HOT_READS = 16
# Put-back messages counted in a row from the tail, at most (lists.lua's ARGV[4]).
MAX_RESTORED = 256
# locate.lua: messages read from each end of one list, and by one call, at most
# (~0.6 us each for 600-byte messages: one call stays under ~3 ms; docs/design.md).
LOCATE_BOUND = 5000
LOCATE_BUDGET = 5000


def packed(raw: bytes) -> bytes:
    """Length-prefixed, as the scripts read keys and tags."""
    return struct.pack("<I", len(raw)) + raw


EMPTY_TAG = packed(b"")


def chunks(seq: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for i in range(0, len(seq), size):
        yield seq[i : i + size]


class Lists:
    """Per list of the queues read: length, tail, head and age; per queue, its read."""

    def __init__(self, prefix: bytes, sep: bytes, steps: Sequence[int]) -> None:
        self.prefix = prefix
        self.sep = sep
        self.steps = tuple(steps)
        self.ages = AgeTracker()
        self.queues: list[str] = []
        self.keys: list[bytes] = []
        self._blobs: list[bytes] = []
        self._len = array("i")
        # Per list, the tag at its tail as last read, length-prefixed (the form
        # lists.lua reads back), and its head (raw).
        self._tails: list[bytes] = []
        self._heads: list[bytes | None] = []
        self._hot: dict[int, int] = {}  # list -> the read that last saw it move
        self._marked: set[int] = set()  # lists whose tail is a message kombu put back
        self.reads: list[QueueRead] = []
        self._shapes: dict[tuple[tuple[int, int], ...], dict[int, int]] = {}
        self._done = 0
        self._dirty: set[int] = set()
        self._dirty_all = False
        # Lists waiting for locate.lua: messages put back at their tail (upper bound).
        self._restored: dict[int, int] = {}

    def layout(self, queues: Sequence[str], raw_name: Callable[[str], bytes]) -> list[bytes]:
        """Keys and per-list state for `queues`, rebuilt only when the queues change.
        Returns the keys no longer read (their persisted ages are deleted)."""
        queues = list(queues)
        if queues == self.queues:
            return []
        old = {
            k: (n, t, h)
            for k, n, t, h in zip(self.keys, self._len, self._tails, self._heads, strict=True)
        }
        keys = [list_key(raw_name(q), s, self.prefix, self.sep) for q in queues for s in self.steps]
        self.queues, self.keys = queues, keys
        unknown = (-1, EMPTY_TAG, None)
        self._len = array("i", (old.get(k, unknown)[0] for k in keys))
        self._tails = [old.get(k, unknown)[1] for k in keys]
        self._heads = [old.get(k, unknown)[2] for k in keys]
        self._hot, self._marked = {}, set()
        self.reads = [EMPTY] * len(queues)
        self._dirty_all = True
        self._blobs = [b"".join(map(packed, chunk)) for chunk in chunks(keys, LISTS_PER_CALL)]
        current = set(keys)
        gone = [k for k in self.ages.lists if k not in current]
        self.ages.retain(keys)
        return gone

    # -- lists.lua ----------------------------------------------------------------------

    def calls(self) -> list[tuple[bytes, bytes, bytes, int]]:
        """The arguments of each lists.lua call of this read: every VERIFY_EVERY-th list
        in turn is checked, and the hot and the marked ones (few) besides."""
        lengths = self._len
        done = self._done
        due = done % VERIFY_EVERY
        hot_since = done - HOT_READS
        for i in [i for i, at in self._hot.items() if at <= hot_since]:
            del self._hot[i]
        extras = sorted(
            i for i in self._hot.keys() | self._marked if i % VERIFY_EVERY != due and lengths[i] > 0
        )
        state = array("i", lengths)
        if -1 in state:  # lists never read yet (a new layout): they are read whole anyway
            rotation = [i for i in range(due, len(state), VERIFY_EVERY) if state[i] >= 0]
        else:
            rotation = None
            state[due::VERIFY_EVERY] = array("i", (-2 - n for n in state[due::VERIFY_EVERY]))
        flagged = extras if rotation is None else sorted(rotation + extras)
        for i in flagged if rotation is not None else extras:
            state[i] = -2 - state[i]
        state_bytes = state.tobytes()
        per = LISTS_PER_CALL
        tails = self._tails
        out = []
        f = 0
        for c, blob in enumerate(self._blobs):
            start, end = c * per, min((c + 1) * per, len(tails))
            upto = bisect.bisect_left(flagged, end, f)
            if rotation is None:
                first = start + (due - start) % VERIFY_EVERY
                if upto == f:  # the rotation alone: sliced, no Python loop
                    olds = b"".join(tails[first:end:VERIFY_EVERY])
                else:
                    idx = sorted([*range(first, end, VERIFY_EVERY), *flagged[f:upto]])
                    olds = b"".join([tails[i] for i in idx])
            else:
                olds = b"".join([tails[i] for i in flagged[f:upto]])
            f = upto
            out.append((blob, state_bytes[start * 4 : end * 4], olds, MAX_RESTORED))
        return out

    def apply(self, replies: Sequence[Any], now: float) -> list[int]:
        """Fold lists.lua's replies in. Lists whose head moved since the last read are
        returned for locate.lua (`locate_request`); the others' ages are updated now."""
        lengths, tails, heads, keys = self._len, self._tails, self._heads, self.keys
        ages = self.ages
        locate: list[int] = []
        for c, (changes, ends) in enumerate(replies):
            base = c * LISTS_PER_CALL - 1
            previous: dict[int, int] = {}
            for j in range(0, len(changes), 2):
                i = base + changes[j]
                n = changes[j + 1]
                previous[i] = lengths[i]
                lengths[i] = n
                self._moved(i, first=previous[i] < 0)
                if n == 0:
                    tails[i], heads[i] = EMPTY_TAG, None
                    self._marked.discard(i)
                    ages.forget(keys[i])
            for j in range(0, len(ends), 4):
                i = base + ends[j]
                tail = ends[j + 1] or b""
                head = ends[j + 2] or tail  # one message: it is both ends
                restored = ends[j + 3]
                if restored:
                    self._marked.add(i)
                else:
                    self._marked.discard(i)
                was_tail, tails[i] = tails[i], packed(tail)
                heads[i] = head
                self._moved(i, first=previous.get(i, 0) < 0)
                key = keys[i]
                before = ages.head(key)
                n = lengths[i]
                grown = n - previous.get(i, n)
                if before is None or not ages.known(key) or previous.get(i, n) == 0:
                    ages.observe(key, now, n, head, None, 0)  # nothing known: dated now
                elif before == head:
                    ages.observe(key, now, n, head, 0, max(0, restored))
                elif restored == 0 and grown > 0 and was_tail == tails[i]:
                    # The oldest message is still there: nothing was taken, so the
                    # growth is what was pushed (no need to count at the head).
                    ages.observe(key, now, n, head, grown, 0)
                else:
                    self._restored[i] = max(0, restored)
                    locate.append(i)
        self._done += 1
        return locate

    def _moved(self, i: int, first: bool = False) -> None:
        """List `i` changed (`first`: was read for the first time: not "hot" for that)."""
        if not first:
            self._hot[i] = self._done
        self._dirty.add(i // len(self.steps))

    # -- locate.lua ---------------------------------------------------------------------

    def locate_request(self, lists: Sequence[int]) -> bytes:
        """locate.lua's ARGV[1] for `lists`: key, head now, head before."""
        ages, heads, keys = self.ages, self._heads, self.keys
        return b"".join(
            packed(keys[i]) + packed(heads[i] or b"") + packed(ages.head(keys[i]) or b"")
            for i in lists
        )

    def located(self, lists: Sequence[int], pushes: Sequence[int], now: float) -> None:
        """locate.lua's answers for `lists` (aligned): date what was pushed."""
        for i, p in zip(lists, pushes, strict=True):
            key = self.keys[i]
            # -1: the previous head is gone and the list was read whole: all new.
            # -2: not found within the bound: unknown, dated now (a lower bound).
            known = p if p >= 0 else None
            if p == -1:
                known = self._len[i]
            restored = self._restored.pop(i, 0)
            self.ages.observe(key, now, self._len[i], self._heads[i], known, restored)

    # -- per queue ----------------------------------------------------------------------

    def finish(self) -> bool:
        """Rebuild the reads of the queues that moved; True when any did."""
        dirty = self._dirty
        if self._dirty_all:
            dirty = set(range(len(self.queues)))
            self._dirty_all = False
        self._dirty = set()
        for q in dirty:
            self.reads[q] = self._queue_read(q)
        return bool(dirty)

    def _queue_read(self, q: int) -> QueueRead:
        start = q * len(self.steps)
        per: dict[int, int] = {}
        oldest: float | None = None
        for k, step in enumerate(self.steps, start=start):
            n = self._len[k]
            if n > 0:
                per[step] = n
                seen = self.ages.first_seen(self.keys[k])
                if seen is not None and (oldest is None or seen < oldest):
                    oldest = seen
        if not per:
            return EMPTY
        # Queues with the same lengths share one (read-only) mapping.
        shared = self._shapes.setdefault(tuple(per.items()), per)
        if len(self._shapes) > 4 * len(self.reads):
            self._shapes.clear()
        return QueueRead(sum(per.values()), shared, oldest)

    def nonempty(self) -> list[tuple[int, bytes]]:
        """(queue index, key) of every list that holds messages."""
        steps = len(self.steps)
        return [(i // steps, self.keys[i]) for i, n in enumerate(self._len) if n > 0]
