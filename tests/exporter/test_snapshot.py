"""Pure snapshot maths: table tests and hypothesis properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exporter.snapshot import (
    AgeState,
    Deployment,
    ListRead,
    Snapshot,
    ages_at,
    build_queue_stats,
    count_unacked,
    is_task_queue,
    parse_binding,
    priority_list_name,
    route_of,
    select_queues,
    tier,
    update_ages,
)

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
    assert parse_binding("batch1\x06\x16\x06\x16batch1") == ("batch1", "", "batch1")
    assert parse_binding("garbage") is None
    assert parse_binding("a\x06\x16b\x06\x16") is None


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


def test_route_prefers_binding() -> None:
    bindings = {("tasks", "rk.batch1"): "batch1"}
    assert route_of("tasks", "rk.batch1", bindings) == "batch1"
    assert route_of("batch2", "batch2", bindings) == "batch2"


def lists_for(queue: str, *reads: ListRead) -> dict[tuple[str, int], ListRead]:
    return {(queue, s): r for s, r in zip(STEPS, reads, strict=False)}


def test_age_grows_while_tail_stays() -> None:
    state = AgeState()
    state, ages = update_ages(state, 100.0, lists_for("q", ListRead(3, "t1", "t3")))
    assert ages == {"q": 0.0}
    state, ages = update_ages(state, 160.0, lists_for("q", ListRead(5, "t1", "t5")))
    assert ages == {"q": 60.0}


def test_age_uses_first_seen_as_head() -> None:
    state = AgeState()
    state, _ = update_ages(state, 100.0, lists_for("q", ListRead(2, "a", "b")))
    state, _ = update_ages(state, 110.0, lists_for("q", ListRead(3, "a", "c")))
    # `a` consumed: `b` is now the oldest, seen at 100 as the head.
    state, ages = update_ages(state, 130.0, lists_for("q", ListRead(2, "b", "c")))
    assert ages["q"] == 30.0
    # Everything before the tail is forgotten.
    assert list(state.seen[("q", 0)]) == ["b", "c"]


def test_age_zero_when_empty_and_state_dropped() -> None:
    state, _ = update_ages(AgeState(), 100.0, lists_for("q", ListRead(1, "a", "a")))
    state, ages = update_ages(state, 200.0, lists_for("q", ListRead(0)))
    assert ages == {"q": 0.0}
    assert state.seen == {}


def test_age_is_max_over_priority_lists() -> None:
    state, _ = update_ages(AgeState(), 0.0, lists_for("q", ListRead(1, "a", "a")))
    state, ages = update_ages(
        state, 50.0, lists_for("q", ListRead(1, "a", "a"), ListRead(1, "b", "b"))
    )
    assert ages["q"] == 50.0


tags = st.text(alphabet="abcdef", min_size=1, max_size=3)


@given(
    scrapes=st.lists(
        st.tuples(st.integers(0, 5), tags, tags, st.floats(0, 100)), min_size=1, max_size=20
    )
)
def test_age_properties(scrapes: list[tuple[int, str, str, float]]) -> None:
    state = AgeState()
    now = 0.0
    for length, tail, head, dt in scrapes:
        now += dt
        read = ListRead(length, tail if length else None, head if length else None)
        state, ages = update_ages(state, now, {("q", 0): read})
        assert 0.0 <= ages["q"] <= now
        if length == 0:
            assert ages["q"] == 0.0
        for remembered in state.seen.values():
            assert len(remembered) <= 1024


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
        deployments={"q": Deployment("d", 1, 1)},
    )
    data = snap.to_json()
    assert data["queues"][0]["priority_lengths"] == {"3": 4}  # type: ignore[index]
    assert data["queues"][0]["work"] == 4  # type: ignore[index]
    assert data["deployments"] == {"q": {"name": "d", "replicas": 1, "ready_replicas": 1}}
    assert snap.queue("q") is stats and snap.queue("nope") is None


@given(
    scrapes=st.lists(
        st.tuples(st.integers(0, 3), tags, st.floats(0, 50), st.floats(0, 50)),
        min_size=1,
        max_size=15,
    )
)
def test_ages_at_matches_update_ages_when_nothing_changed(
    scrapes: list[tuple[int, str, float, float]],
) -> None:
    # The collector's fast path (lists unchanged) must give the very ages a full update would.
    state = AgeState()
    now = 0.0
    for length, tail, dt, later in scrapes:
        now += dt
        reads = {("q", 0): ListRead(length, tail if length else None), ("p", 3): ListRead(0)}
        state, _ = update_ages(state, now, reads)
        _, full = update_ages(state, now + later, reads)
        assert ages_at(state, now + later, ["q", "p"]) == full
