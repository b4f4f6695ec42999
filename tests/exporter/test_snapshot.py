"""Pure snapshot maths: table tests and hypothesis properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exporter.broker.redis.inflight import count_unacked
from exporter.broker.redis.keys import is_task_queue, list_key, parse_binding, priority_list_name
from exporter.snapshot import Deployment, Snapshot
from exporter.stats import ListRead, build_queue_stats, select_queues, tier

STEPS = (0, 3, 6, 9)


@pytest.mark.parametrize(
    ("queue", "step", "prefix", "key"),
    [
        ("batch1", 0, "", "batch1"),
        ("batch1", 3, "", "batch1\x06\x163"),
        ("batch1", 9, "app:", "app:batch1\x06\x169"),
        ("batch1", 0, "app:", "app:batch1"),
    ],
)
def test_priority_list_name(queue: str, step: int, prefix: str, key: str) -> None:
    assert priority_list_name(queue, step, prefix) == key


@pytest.mark.parametrize(
    ("depth", "expected"),
    [(0, 0), (99, 0), (100, 0), (101, 1), (499, 1), (500, 1), (501, 2), (999, 2), (1000, 3)],
)
def test_tier_boundaries_match_alerts(depth: int, expected: int) -> None:
    # > 100 info, > 500 warning, >= 1000 critical: the alert rules use the same rule.
    assert tier(depth, (100, 500, 1000)) == expected


def test_parse_binding() -> None:
    sep = "\x06\x16"
    assert parse_binding("batch1\x06\x16\x06\x16batch1", sep) == ("batch1", "", "batch1")
    assert parse_binding("garbage", sep) is None
    assert parse_binding("a\x06\x16b\x06\x16", sep) is None
    # kombu's `sep` option, and raw bytes.
    assert parse_binding(b"batch1::batch1", b":") == (b"batch1", b"", b"batch1")
    assert parse_binding(b"a:b::q", b":") is None  # kombu could not route this either


@pytest.mark.parametrize(
    ("queue", "step", "prefix", "sep", "key"),
    [
        (b"batch1", 0, b"", b":", b"batch1"),
        (b"batch1", 9, b"", b":", b"batch1:9"),
        (b"q\xff", 3, b"app:", b"\x06\x16", b"app:q\xff\x06\x163"),
    ],
)
def test_list_key_follows_sep(
    queue: bytes, step: int, prefix: bytes, sep: bytes, key: bytes
) -> None:
    assert list_key(queue, step, prefix, sep) == key
    text = priority_list_name(queue.decode("latin-1"), step, prefix.decode(), sep.decode())
    assert text.encode("latin-1") == key


@pytest.mark.parametrize(
    ("exchange", "queue", "expected"),
    [
        ("batch1", "batch1", True),
        ("celery", "celery", True),
        ("celery.pidbox", "abc@host.celery.pidbox", False),
        ("reply.celery.pidbox", "uuid.reply.celery.pidbox", False),
        ("celeryev", "celeryev.1234", False),
    ],
)
def test_is_task_queue(exchange: str, queue: str, expected: bool) -> None:
    assert is_task_queue(exchange, queue) is expected


def test_select_queues_configured_first_then_capped() -> None:
    chosen, dropped = select_queues(["b0", "b1"], ["z", "a", "b0", "m"], 4)
    assert chosen == ["b0", "b1", "a", "m"]
    assert dropped == 1


@given(
    configured=st.lists(st.text(min_size=1, max_size=5), max_size=10, unique=True),
    discovered=st.sets(st.text(min_size=1, max_size=5), max_size=30),
    cap=st.integers(min_value=1, max_value=40),
)
def test_select_queues_properties(configured: list[str], discovered: set[str], cap: int) -> None:
    chosen, dropped = select_queues(configured, discovered, cap)
    # Configured queues are always exported, even beyond the cap.
    assert chosen[: len(configured)] == configured
    assert len(set(chosen)) == len(chosen)
    extra = discovered - set(configured)
    assert len(chosen) - len(configured) + dropped == len(extra)
    assert len(chosen) <= max(cap, len(configured))


@given(
    routes=st.dictionaries(st.uuids().map(str), st.sampled_from(["a", "b", "c"]), max_size=50),
    unknown=st.lists(st.uuids().map(str), max_size=10),
)
def test_count_unacked_counts_known_tags_only(routes: dict[str, str], unknown: list[str]) -> None:
    counts = count_unacked([*routes, *unknown], routes)
    assert sum(counts.values()) == len(routes)
    for q in "abc":
        assert counts[q] == sum(1 for v in routes.values() if v == q)


@given(
    lengths=st.lists(st.integers(0, 10_000), min_size=4, max_size=4),
    unacked=st.integers(0, 500),
)
def test_queue_stats_sum_all_priority_lists(lengths: list[int], unacked: int) -> None:
    lists = {("q", s): ListRead(n) for s, n in zip(STEPS, lengths, strict=True)}
    (stats,) = build_queue_stats(
        ["q"], {"q": "dep"}, STEPS, lists, {"q": unacked}, {}, {}, {"dep": Deployment("dep", 3, 2)}
    )
    assert stats.waiting == sum(lengths)
    assert stats.priority_lengths == {s: n for s, n in zip(STEPS, lengths, strict=True) if n}
    assert stats.work == sum(lengths) + unacked
    assert (stats.replicas, stats.ready_replicas) == (3, 2)


def test_queue_stats_without_cluster() -> None:
    (stats,) = build_queue_stats(["q"], {}, STEPS, {}, {}, {}, {}, None)
    assert stats.waiting == 0 and stats.replicas is None and not stats.configured


def test_snapshot_json_roundtrip() -> None:
    (stats,) = build_queue_stats(
        ["q"], {"q": "d"}, STEPS, {("q", 3): ListRead(4, "x", "y")}, {}, {}, {}, None
    )
    snap = Snapshot(
        taken_at=1.0,
        duration_seconds=0.01,
        broker_up=True,
        kubernetes_up=None,
        queues=(stats,),
        deployments={"q": Deployment("d", 1, 1, (("app", "worker"),))},
    )
    data = snap.to_json()
    assert data["queues"][0]["priority_lengths"] == {"3": 4}  # type: ignore[index]
    assert data["queues"][0]["work"] == 4  # type: ignore[index]
    assert data["deployments"] == {
        "q": {"name": "d", "replicas": 1, "ready_replicas": 1, "selector": {"app": "worker"}}
    }
    assert snap.queue("q") is stats and snap.queue("nope") is None
