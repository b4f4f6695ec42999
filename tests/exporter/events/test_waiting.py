"""Tasks sent and not heard of since: what dates a queue's oldest waiting message when
the broker cannot (pure)."""

from __future__ import annotations

from exporter.events.waiting import LAG_SECONDS, SentWaiting


def sent(w: SentWaiting, uuid: str, queue: str, at: float) -> None:
    w.observe("task-sent", {"uuid": uuid, "queue": queue, "timestamp": at})


def test_the_oldest_sent_task_with_no_later_event_dates_its_queue() -> None:
    w = SentWaiting(cap=100)
    sent(w, "a", "batch1", 100.0)
    sent(w, "b", "batch1", 105.0)
    sent(w, "c", "batch2", 103.0)
    assert (w.oldest("batch1"), w.oldest("batch2"), w.oldest("batch3")) == (100.0, 103.0, None)
    w.observe("task-received", {"uuid": "a", "hostname": "w1"})
    assert w.oldest("batch1") == 105.0
    w.observe("task-revoked", {"uuid": "b"})
    assert w.oldest("batch1") is None
    # Not task events, or malformed ones: nothing changes.
    w.observe("worker-heartbeat", {"uuid": "c"})
    w.observe("task-sent", {"uuid": "d", "queue": "batch2", "timestamp": float("nan")})
    w.observe("task-sent", {"uuid": "e", "timestamp": 1.0})
    assert w.oldest("batch2") == 103.0


def test_an_empty_queue_forgets_what_was_sent_before_its_figures() -> None:
    w = SentWaiting(cap=100)
    sent(w, "old", "batch1", 1000.0)
    sent(w, "recent", "batch1", 1000.0 + 100)
    w.emptied("batch1", now=1000.0 + 100 + LAG_SECONDS / 2)
    assert w.oldest("batch1") == 1100.0  # sent after the broker's figures may date from
    w.emptied("batch1", now=1100.0 + LAG_SECONDS + 1)
    assert w.oldest("batch1") is None


def test_memory_is_bounded_oldest_first() -> None:
    w = SentWaiting(cap=3)
    for i in range(5):
        sent(w, f"t{i}", "batch1", float(i))
    assert w.oldest("batch1") == 2.0
