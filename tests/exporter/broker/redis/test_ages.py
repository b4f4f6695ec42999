"""Ages from push segments: table tests and a property over simulated FIFO lists."""

from __future__ import annotations

from collections import deque

from hypothesis import given
from hypothesis import strategies as st

from exporter.broker.redis.ages import (
    HISTORY,
    PERSISTED,
    AgeTracker,
    ListAge,
    advance,
    decode,
    encode,
)

K = b"q"


def test_a_growing_queue_keeps_the_time_its_oldest_message_was_counted() -> None:
    # 1 msg/s in, 0.5 msg/s out, read every 15 s: the tail moves on, but stays in the
    # oldest segment still there (the old reader dated such a tail `now`).
    t = AgeTracker()
    t.observe(K, 15.0, 15, b"h15", None)  # first read: all counted now
    t.observe(K, 30.0, 22, b"h30", 15)  # 15 pushed, 8 taken
    assert t.first_seen(K) == 15.0
    t.observe(K, 45.0, 29, b"h45", 15)  # 15 pushed, 8 taken: 15 - 16 < 0 of the first left
    assert t.first_seen(K) == 30.0
    assert t.lists[K].segments == (30.0, 14, 45.0, 15)


def test_a_draining_queue_keeps_its_segments_until_taken() -> None:
    t = AgeTracker()
    t.observe(K, 10.0, 5, b"a", None)
    t.observe(K, 20.0, 9, b"b", 4)
    t.observe(K, 30.0, 6, b"b", 0)  # 3 taken from the 10 s segment
    assert t.lists[K].segments == (10.0, 2, 20.0, 4)
    t.observe(K, 40.0, 4, b"b", 0)  # the 10 s segment is gone
    assert t.first_seen(K) == 20.0


def test_unknown_pushes_date_everything_now() -> None:
    t = AgeTracker()
    t.observe(K, 10.0, 5, b"a", None)
    t.observe(K, 20.0, 50, b"x", None)  # the old head not found within the bound
    assert t.lists[K].segments == (20.0, 50)


def test_messages_put_back_at_the_tail_are_dated_now_and_the_rest_stays() -> None:
    t = AgeTracker()
    t.observe(K, 10.0, 4, b"a", None)
    t.observe(K, 20.0, 8, b"b", 4)
    # A warm shutdown put 3 back at the tail while consumers took 2: + 3 - 2.
    t.observe(K, 30.0, 9, b"b", 0, restored=3)
    assert t.lists[K].segments == (30.0, 3, 10.0, 2, 20.0, 4)
    assert t.first_seen(K) == 30.0
    # More growth at the tail than the marks tell is dated now too.
    assert advance(ListAge(b"h", (1.0, 2)), 5.0, 4, b"h", 0, 0) == ListAge(b"h", (5.0, 2, 1.0, 2))


def test_estimates_that_cannot_be_true_date_by_what_is_sure() -> None:
    before = ListAge(b"h", (1.0, 3))
    assert advance(before, 9.0, 2, b"x", 5) == ListAge(b"x", (9.0, 2))
    assert advance(before, 9.0, 0, None, 0) is None


def test_empty_forgets() -> None:
    t = AgeTracker()
    t.observe(K, 1.0, 1, b"a", None)
    t.observe(K, 2.0, 0, None, None)
    assert t.first_seen(K) is None and t.lists == {}


def test_persisted_value_roundtrip_and_dirty_tracking() -> None:
    t = AgeTracker()
    t.observe(K, 1.5, 3, b"\xff\x00head", None)
    assert t.take_dirty() == {K: encode(t.lists[K])}
    assert t.take_dirty() == {}
    t.observe(K, 9.0, 3, b"\xff\x00head", 0)  # nothing new
    assert t.take_dirty() == {}
    restored = AgeTracker()
    restored.seed(K, encode(t.lists[K]))
    assert restored.lists[K] == ListAge(b"\xff\x00head", (1.5, 3))
    t.forget(K)
    assert t.take_dirty() == {K: None}
    value = encode(ListAge(b"abc", (1.0, 2, 2.0, 5)))
    assert decode(value) == ListAge(b"abc", (1.0, 2, 2.0, 5))
    assert decode(value[:-1]) is None and decode(b"garbage") is None
    # The format of the tag histories before segments reads as unknown, not as garbage.
    assert decode(b"\x03\x00abc" + b"\x00" * 8) is None


def test_many_segments_are_merged_to_a_lower_bound() -> None:
    t = AgeTracker()
    t.observe(K, 0.0, 1, b"h0", None)
    for i in range(1, HISTORY + 50):
        t.observe(K, float(i), i + 1, f"h{i}".encode(), 1)
    segs = t.lists[K].segments
    assert len(segs) == 2 * HISTORY
    assert segs[0] == 0.0 and segs[-2] == float(HISTORY + 49)  # oldest and newest exact
    assert sum(segs[1::2]) == HISTORY + 50
    kept = decode(encode(t.lists[K]))
    assert kept is not None and len(kept.segments) == 2 * PERSISTED
    assert kept.oldest == 0.0 and kept.length == HISTORY + 50
    # Every merged run is dated by its newest member: later, never earlier.
    times = kept.segments[0::2]
    assert list(times) == sorted(times)


# A FIFO list as kombu keeps it: LPUSH at the head, BRPOP at the tail, and kombu's
# RPUSH of messages it puts back at the tail; a read between steps.
ops = st.lists(
    st.tuples(st.integers(0, 6), st.integers(0, 6), st.integers(0, 2), st.floats(0.1, 30.0)),
    min_size=1,
    max_size=40,
)


@given(ops, st.booleans())
def test_age_is_never_above_the_truth_and_exact_to_the_read_that_counted_it(
    steps: list[tuple[int, int, int, float]], known: bool
) -> None:
    t = AgeTracker()
    fifo: deque[tuple[int, float, bool]] = deque()  # (serial, push time, put back), tail first
    first_read: dict[int, float] = {}  # serial -> the first read after its push
    now, serial = 0.0, 0
    head_before: int | None = None
    ever_put_back = False
    for pushes, pops, put_back, dt in steps:
        for _ in range(pushes):
            now += dt / 10
            serial += 1
            fifo.append((serial, now, False))
        taken = [fifo.popleft() for _ in range(min(pops, len(fifo)))]
        for s, pushed, _ in taken[:put_back]:
            fifo.appendleft((s, pushed, True))  # kombu's RPUSH at the tail, marked
            ever_put_back = True
        now += dt
        for s, _, _ in fifo:
            first_read.setdefault(s, now)
        if not fifo:
            t.observe(K, now, 0, None, None)
            assert t.first_seen(K) is None
            head_before = None
            continue
        head = fifo[-1][0]
        # What locate.lua finds: the distance from the new head to the old one.
        located = None
        if head_before is not None:
            serials = [s for s, _, _ in fifo]
            located = (
                len(serials) - 1 - serials.index(head_before)
                if head_before in serials
                else len(fifo)  # the old head is gone: every message is new
            )
        marked = 0  # lists.lua's count: put-back messages in a row from the tail
        for _, _, back in fifo:
            if not back:
                break
            marked += 1
        t.observe(K, now, len(fifo), str(head).encode(), located if known else None, marked)
        first = t.first_seen(K)
        tail, pushed, _ = fifo[0]
        assert first is not None and pushed <= first <= now  # never above the truth
        assert first >= first_read[tail]
        if known and not ever_put_back:
            # Dated by the read that first counted it: within that read's interval.
            assert first == first_read[tail]
        head_before = head
        assert len(t.lists[K].segments) <= 2 * HISTORY
