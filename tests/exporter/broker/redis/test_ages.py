"""First-seen times of list ends: table tests and a property over simulated FIFO lists."""

from __future__ import annotations

from collections import deque

from hypothesis import given
from hypothesis import strategies as st

from exporter.broker.redis.ages import HISTORY, PERSISTED, AgeTracker, decode, encode

K = b"q"


def test_age_grows_while_tail_stays() -> None:
    t = AgeTracker()
    t.observe(K, 100.0, b"t1", b"t3")
    t.observe(K, 160.0, b"t1", b"t5")
    assert t.first_seen(K) == 100.0


def test_a_tail_seen_at_the_head_keeps_that_time() -> None:
    t = AgeTracker()
    t.observe(K, 100.0, b"a", b"b")
    t.observe(K, 110.0, b"a", b"c")
    # `a` consumed: `b` is now the oldest, seen at 100 as the head.
    t.observe(K, 130.0, b"b", b"c")
    assert t.first_seen(K) == 100.0
    assert list(t.tags(K)) == [b"b", b"c"]  # everything before the tail is forgotten


def test_an_unknown_tail_is_at_least_as_old_as_the_head() -> None:
    t = AgeTracker()
    t.observe(K, 100.0, b"a", b"z")  # a backlog arrives: a (oldest) .. z (newest)
    # Consumers drain without new messages: the tail is one we never saw, but it was
    # pushed before z, which we first saw at 100: its age is at least now - 100.
    t.observe(K, 200.0, b"m", b"z")
    assert t.first_seen(K) == 100.0
    # A new head as well: the bound is the newest head we know of, or now.
    t.observe(K, 300.0, b"q", b"new")
    assert t.first_seen(K) == 300.0


def test_empty_forgets() -> None:
    t = AgeTracker()
    t.observe(K, 1.0, b"a", None)
    t.observe(K, 2.0, None, None)
    assert t.first_seen(K) is None and t.lists == {}


def test_persisted_value_roundtrip_and_dirty_tracking() -> None:
    t = AgeTracker()
    t.observe(K, 1.5, b"\xff\x00tag", b"head")
    assert t.take_dirty() == {K: encode(t.lists[K])}
    assert t.take_dirty() == {}
    t.observe(K, 9.0, b"\xff\x00tag", b"head")  # nothing new
    assert t.take_dirty() == {}
    restored = AgeTracker()
    restored.seed(K, encode(t.lists[K]))
    assert restored.tags(K) == {b"\xff\x00tag": 1.5, b"head": 1.5}
    t.forget(K)
    assert t.take_dirty() == {K: None}
    value = encode((b"abc", 1.0, b"def", 2.0))
    assert decode(value) == (b"abc", 1.0, b"def", 2.0)
    assert decode(value[:-1]) == () and decode(b"garbage") == ()


def test_persisted_value_is_small() -> None:
    t = AgeTracker()
    for i in range(50):
        t.observe(K, float(i), b"tail", f"h{i}".encode())
    kept = dict(zip(*[iter(decode(encode(t.lists[K])))] * 2, strict=True))
    assert len(kept) == PERSISTED
    assert [*kept][:: PERSISTED - 1] == [b"tail", b"h49"]


# A FIFO list as kombu keeps it: LPUSH at the head, BRPOP at the tail.
ops = st.lists(
    st.tuples(st.integers(0, 4), st.integers(0, 4), st.floats(0.0, 30.0)), min_size=1, max_size=40
)


@given(ops)
def test_age_is_a_lower_bound_and_exact_for_messages_seen_at_the_head(
    steps: list[tuple[int, int, float]],
) -> None:
    t = AgeTracker()
    fifo: deque[tuple[bytes, float]] = deque()  # (tag, push time), tail first
    seen_at_head: dict[bytes, float] = {}
    now, serial = 0.0, 0
    for pushes, pops, dt in steps:
        for _ in range(pushes):
            now += dt / 10
            serial += 1
            fifo.append((f"m{serial}".encode(), now))
        for _ in range(min(pops, len(fifo))):
            fifo.popleft()
        now += dt
        if not fifo:
            t.observe(K, now, None, None)
            assert t.first_seen(K) is None
            continue
        tail, pushed = fifo[0]
        head = fifo[-1][0] if len(fifo) > 1 else None
        seen_at_head.setdefault(fifo[-1][0], now)
        t.observe(K, now, tail, head)
        first = t.first_seen(K)
        assert first is not None
        assert pushed <= first <= now  # never older than the message really is
        if tail in seen_at_head:
            assert first == seen_at_head[tail]  # exact to the scrape that saw it first
        assert len(t.tags(K)) <= HISTORY
