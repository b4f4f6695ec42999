"""The handover record: what a new leader learns from the previous one (pure)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autoscaler import handover
from autoscaler.handover import Change
from autoscaler.policy import BatchState, PolicyState

T = 1_800_000_000.0


def test_intent_keeps_the_other_directions_time() -> None:
    r = handover.with_change({}, "b1", previous=0, desired=1, at=T)
    assert r["b1"] == Change(desired=1, previous=0, at=T, up_at=T, down_at=None)
    r = handover.with_change(r, "b1", previous=1, desired=2, at=T + 60)
    assert r["b1"].up_at == T + 60 and r["b1"].down_at is None
    r = handover.with_change(r, "b1", previous=2, desired=1, at=T + 120)
    assert (r["b1"].up_at, r["b1"].down_at) == (T + 60, T + 120)
    # Another batch is left alone.
    r = handover.with_change(r, "b2", previous=0, desired=1, at=T + 130)
    assert r["b1"].at == T + 120 and r["b2"].previous == 0


@given(
    st.dictionaries(
        st.text(min_size=1, max_size=10),
        st.builds(
            Change,
            st.integers(0, 50),
            st.integers(0, 50),
            st.floats(0, 2e9),
            st.none() | st.floats(0, 2e9),
            st.none() | st.floats(0, 2e9),
        ),
        max_size=5,
    )
)
def test_encode_decode_round_trip(record: dict[str, Change]) -> None:
    assert handover.decode(handover.encode(record)) == record


@pytest.mark.parametrize(
    "text",
    [None, "", "{", "[]", '{"v": 2, "batches": {}}', '{"v": 1}', '{"v":1,"batches":{"b":{}}}'],
)
def test_an_unreadable_record_is_no_record(text: str | None) -> None:
    assert handover.decode(text) == {}


CHANGE = Change(desired=3, previous=2, at=T, up_at=T, down_at=T - 600)


@pytest.mark.parametrize(
    ("name", "replicas_now", "ours"),
    [
        ("the last write landed", 3, 3),
        ("the leader died before its write landed", 2, 2),
        ("someone else changed it since", 7, 3),  # stays an override for the policy to see
        ("replicas unknown", None, 3),
    ],
)
def test_seed_takes_either_end_of_the_last_change_as_ours(
    name: str, replicas_now: int | None, ours: int
) -> None:
    now = {} if replicas_now is None else {"b1": replicas_now}
    state = handover.seed({"b1": CHANGE}, now)
    bs = state.batch("b1")
    assert (bs.last_desired, bs.last_seen_replicas) == (ours, ours), name
    # The pace carries over: the next step waits for the interval after the last one.
    assert (bs.last_up_at, bs.last_down_at) == (T, T - 600)
    assert bs.override_until is None


def test_seed_replaces_a_stale_memory_but_keeps_other_batches() -> None:
    stale = PolicyState({"b1": BatchState(last_desired=9, override_until=T + 900),
                         "b2": BatchState(last_desired=1)})  # fmt: skip
    state = handover.seed({"b1": CHANGE}, {"b1": 3}, stale)
    assert state.batch("b1").last_desired == 3 and state.batch("b1").override_until is None
    assert state.batch("b2").last_desired == 1
