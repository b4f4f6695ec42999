"""The claim history's ring of ConfigMaps, on the fake API server: bounded, never a
duplicate, never a loss when two writers race, at least 90% of its capacity kept."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from batchctl.claims import ClaimEvent, StoreRefused
from batchctl.claims.ring import RING_SEGMENTS, SEGMENT_MAX_BYTES, HistoryRing, segment_names
from batchctl.kube import new_api_client
from tests.support.fakekube import FakeKube
from tests.support.isolation import starts_servers
from tests.support.leases import kube_config

NOW = 1_800_000_000.0


@pytest.fixture
@starts_servers
def kube() -> Iterator[FakeKube]:
    with FakeKube() as k:
        yield k


def ring_of(kube: FakeKube, tmp: Path, max_events: int = 10_000, token: str | None = None):  # type: ignore[no-untyped-def]
    cfg = kube_config(kube, tmp, token=token, filename=f"kc-{token or 'sa'}")
    return HistoryRing(new_api_client(cfg), cfg.namespace, 2.0, max_events=max_events)


def events(start: int, n: int, purpose: str = "reindex") -> list[ClaimEvent]:
    return [
        ClaimEvent("claimed", f"batch{i % 4}", NOW + i, "alice", "alice", purpose, "", f"e{i:06d}")
        for i in range(start, start + n)
    ]


def test_appended_events_read_back_once(kube: FakeKube, tmp_path: Path) -> None:
    ring = ring_of(kube, tmp_path)
    assert ring.append(events(0, 5)) == 5
    assert ring.append(events(3, 5)) == 3  # e3, e4 are there already
    read = ring.read()
    assert [e.id for e in read.history.events] == [f"e{i:06d}" for i in range(8)]
    assert read.history.skipped == 0
    assert [s.generation for s in read.segments] == [1] + [0] * (RING_SEGMENTS - 1)


def test_the_ring_is_bounded_and_keeps_the_newest(kube: FakeKube, tmp_path: Path) -> None:
    """max_events 100: ten segments of 10; 350 events in, the newest 91 to 100 kept."""
    ring = ring_of(kube, tmp_path, max_events=100)
    for start in range(0, 350, 25):
        ring.append(events(start, 25))
    read = ring.read()
    ids = [e.id for e in read.history.events]
    assert 90 <= len(ids) <= 100
    assert ids == [f"e{i:06d}" for i in range(350 - len(ids), 350)]  # the newest, in order
    assert read.full and sorted(s.generation for s in read.segments)[-1] == 35
    assert set(segment_names()) == {s.name for s in read.segments}


def test_at_least_a_thousand_entries_at_the_documented_setting(
    kube: FakeKube, tmp_path: Path
) -> None:
    """history_max_events 1,112 (docs/configuration.md): after 3,000 events of the largest
    size, over 1,000 remain, and no segment passes its byte budget."""
    ring = ring_of(kube, tmp_path, max_events=1112)
    big = "x" * 200
    for start in range(0, 3000, 250):
        ring.append(events(start, 250, purpose=big))
    read = ring.read()
    assert len(read.history.events) >= 1000
    assert all(s.size <= SEGMENT_MAX_BYTES for s in read.segments)


def test_two_writers_racing_lose_nothing_and_double_nothing(kube: FakeKube, tmp_path: Path) -> None:
    """Each write carries the segment's resourceVersion: the loser of a race (409)
    re-reads and writes again."""
    rings = [ring_of(kube, tmp_path, max_events=60), ring_of(kube, tmp_path, max_events=60)]
    barrier = threading.Barrier(2)

    def write(i: int) -> None:
        barrier.wait()
        for start in range(i * 20, i * 20 + 20, 4):
            rings[i].append(events(start, 4))

    threads = [threading.Thread(target=write, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ids = [e.id for e in rings[0].read().history.events]
    assert sorted(ids) == [f"e{i:06d}" for i in range(40)]
    assert kube.requests_to("PUT", r"/configmaps/")  # the updates carried their versions


def test_a_reader_without_the_role_is_refused_clearly(kube: FakeKube, tmp_path: Path) -> None:
    kube.apply_rbac([])  # RBAC on, nothing granted
    ring = ring_of(kube, tmp_path, token=kube.add_user("eve"))
    with pytest.raises(StoreRefused, match='User "eve" cannot get resource "configmaps"'):
        ring.read()
