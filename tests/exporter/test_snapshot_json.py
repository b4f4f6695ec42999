"""The snapshot on the wire: what /api/v1/snapshot serves, the sidecar reads back equal."""

from __future__ import annotations

import json
import math

from hypothesis import given
from hypothesis import strategies as st

from batchctl.claims import Claim
from batchctl.metrics import TASK_STATES
from exporter.events.model import EventsView, QueueActivity, TaskStats
from exporter.progress import SPARK_POINTS, Progress
from exporter.snapshot import Deployment, QueueStats, Snapshot

names = st.text(min_size=1, max_size=12)
counts = st.integers(min_value=0, max_value=10**9)
seconds = st.floats(min_value=0, max_value=1e9, allow_nan=False, allow_infinity=False)


@st.composite
def queue_stats(draw: st.DrawFn) -> QueueStats:
    dep = draw(st.none() | names)
    return QueueStats(
        queue=draw(names),
        waiting=draw(counts),
        priority_lengths=draw(st.dictionaries(st.integers(0, 255), counts, max_size=4)),
        unacked=draw(counts),
        oldest_age_seconds=draw(seconds),
        memory_bytes=draw(counts),
        configured=draw(st.booleans()),
        deployment=dep,
        replicas=None if dep is None else draw(counts),
        ready_replicas=None if dep is None else draw(counts),
    )


maybe_seconds = st.none() | seconds
events_views = st.builds(
    EventsView,
    st.booleans(),
    maybe_seconds,
    st.none() | names,
    counts,
    st.lists(
        st.builds(QueueActivity, names, counts, counts, counts, counts, st.booleans()),
        max_size=4,
        unique_by=lambda q: q.queue,
    ).map(tuple),
    st.lists(
        st.builds(
            TaskStats,
            names,
            names,
            st.dictionaries(st.sampled_from(TASK_STATES), counts, max_size=8),
            st.just(()) | st.lists(counts, min_size=19, max_size=19).map(tuple),
            seconds,
        ),
        max_size=4,
    ).map(tuple),
)
progresses = st.builds(
    Progress,
    names,
    st.none() | seconds,
    st.sampled_from([None, "events", "estimate"]),
    st.none() | counts,
    st.none() | counts,
    maybe_seconds,
    st.lists(st.none() | counts, max_size=SPARK_POINTS).map(tuple),
)


@st.composite
def snapshots(draw: st.DrawFn) -> Snapshot:
    up = draw(st.booleans())
    queues = draw(st.lists(queue_stats(), max_size=5, unique_by=lambda q: q.queue))
    return Snapshot(
        taken_at=draw(seconds),
        duration_seconds=draw(seconds),
        broker_up=up,
        kubernetes_up=draw(st.none() | st.booleans()),
        queues=tuple(queues) if up else (),
        broker_error=None if up else draw(names),
        kubernetes_error=draw(st.none() | names),
        broker_memory_used_bytes=draw(st.none() | counts),
        broker_memory_max_bytes=draw(st.none() | counts),
        queues_dropped=draw(counts),
        queues_unpublished=tuple(draw(st.lists(names, max_size=3))),
        deployments=draw(
            st.dictionaries(names, st.builds(Deployment, names, counts, counts), max_size=3)
        ),
        claims={
            q: Claim(q, holder, purpose, "", since, since + 60)
            for q, holder, purpose, since in draw(
                st.lists(st.tuples(names, names, st.text(max_size=20), seconds), max_size=3)
            )
        },
        events=draw(st.none() | events_views),
        progress={p.queue: p for p in draw(st.lists(progresses, max_size=4))},
    )


@given(snapshots())
def test_to_json_and_back_is_the_same_snapshot(snap: Snapshot) -> None:
    wire = json.loads(json.dumps(snap.to_json()))
    back = Snapshot.from_json(wire)
    # generation is the exporter's render cache key, not part of the reading.
    assert back == Snapshot(**{**_fields(snap), "generation": None})
    assert [back.queue(q.queue) for q in snap.queues] == list(snap.queues)
    if snap.events is not None:
        assert back.events is not None
        assert [back.events.queue(q.queue) for q in snap.events.queues] == list(snap.events.queues)


def _fields(snap: Snapshot) -> dict[str, object]:
    return {f: getattr(snap, f) for f in snap.__dataclass_fields__ if not f.startswith("_")}


def test_unknown_keys_are_ignored_and_missing_optional_ones_default() -> None:
    wire = {
        "taken_at": 5.0,
        "duration_seconds": 0.1,
        "broker_up": True,
        "kubernetes_up": None,
        "from_a_newer_exporter": 1,
        "queues": [{"queue": "q", "waiting": 1, "priority_lengths": {"9": 1}, "unacked": 0,
                    "oldest_age_seconds": 2.0, "memory_bytes": 0, "configured": True,
                    "extra": "x"}],
    }  # fmt: skip
    snap = Snapshot.from_json(wire)
    q = snap.queue("q")
    assert q is not None and q.priority_lengths == {9: 1} and q.replicas is None
    assert snap.claims == {} and snap.queues_dropped == 0 and snap.queues_unpublished == ()
    # An exporter from before events: events unknown (off), no progress.
    assert snap.events is None and snap.progress == {}
    assert not math.isnan(snap.taken_at)
