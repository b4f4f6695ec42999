"""Leader election on a Lease, against the fake API server: one leader, calm handovers,
and a leader cut off from the API stops writing before anyone else can start."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from autoscaler.leader import DECISIONS_ANNOTATION, STATE_ANNOTATION, LeaderElector, NotLeader
from batchctl.config import KubernetesConfig, LeaderElectionConfig
from batchctl.decisions import DecisionRecord, decode_compact, encode_compact
from batchctl.kube import new_api_client
from tests.support.fakekube import FakeKube
from tests.support.isolation import starts_servers
from tests.support.servers.network import CuttableProxy
from tests.support.waits import wait_for

NS = "court-listener"
LE = LeaderElectionConfig(
    lease_name="batchctl-autoscaler",
    lease_duration_seconds=4,
    renew_deadline_seconds=2.5,
    retry_period_seconds=1,
)
TIMEOUT = 1.0  # kubernetes.request_timeout_seconds: lease - renew deadline covers it

MakeElector = Callable[..., LeaderElector]


@pytest.fixture
@starts_servers
def kube() -> Iterator[FakeKube]:
    with FakeKube(NS) as k:
        yield k


@pytest.fixture
def elector(kube: FakeKube, tmp_path: Path) -> Iterator[MakeElector]:
    made: list[LeaderElector] = []

    def make(identity: str, server: str | None = None) -> LeaderElector:
        path = kube.write_kubeconfig(tmp_path, filename=f"kubeconfig-{identity}")
        if server is not None:
            path.write_text(path.read_text().replace(kube.url, server, 1))
        api = new_api_client(KubernetesConfig(namespace=NS, kubeconfig=str(path)))
        api.user_agent = f"test ({identity})"
        e = LeaderElector(LE.model_copy(update={"identity": identity}), NS, api, TIMEOUT)
        made.append(e)
        e.start()
        return e

    yield make
    for e in made:
        e.stop(release=False)


class Timeline:
    """Who may write, sampled every 20 ms: the test's view of overlapping writers."""

    def __init__(self, electors: dict[str, LeaderElector]) -> None:
        self.electors = electors
        self.samples: list[tuple[float, frozenset[str]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            leaders = frozenset(n for n, e in self.electors.items() if e.is_leader())
            self.samples.append((time.monotonic(), leaders))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def overlaps(self) -> list[float]:
        return [t for t, who in self.samples if len(who) > 1]

    def first(self, name: str) -> float | None:
        return next((t for t, who in self.samples if name in who), None)

    def last(self, name: str) -> float | None:
        return next((t for t, who in reversed(self.samples) if name in who), None)


def test_one_leader_and_the_other_waits(kube: FakeKube, elector: MakeElector) -> None:
    a = elector("a")
    wait_for(a.is_leader, timeout=5, what="a leads")
    b = elector("b")
    timeline = Timeline({"a": a, "b": b})
    # b competes for several retry periods and never leads while a renews.
    wait_for(
        lambda: len(kube.requests_to("GET", r"/leases/batchctl-autoscaler$")) >= 8,
        timeout=10,
        what="both candidates polling the lease",
    )
    timeline.stop()
    assert timeline.first("b") is None and timeline.overlaps() == []
    lease = kube.lease("batchctl-autoscaler")
    assert lease is not None and lease["spec"]["holderIdentity"] == "a"


def test_release_hands_over_at_the_next_retry(kube: FakeKube, elector: MakeElector) -> None:
    a = elector("a")
    wait_for(a.is_leader, timeout=5, what="a leads")
    b = elector("b")
    wait_for(lambda: kube.requests_to("GET", r"/leases/"), timeout=5, what="b polls")
    released = time.monotonic()
    a.stop(release=True)
    assert not a.is_leader()  # stops writing at once
    wait_for(b.is_leader, timeout=LE.retry_period_seconds + 3, what="b takes over")
    # Released, not expired: well before a lease duration.
    assert time.monotonic() - released < LE.lease_duration_seconds


def test_a_dead_leader_is_replaced_after_the_lease_expires(
    kube: FakeKube, elector: MakeElector
) -> None:
    a = elector("a")
    wait_for(a.is_leader, timeout=5, what="a leads")
    b = elector("b")
    died = time.monotonic()
    a.stop(release=False)  # like a SIGKILL: the Lease still names a
    wait_for(b.is_leader, timeout=LE.lease_duration_seconds + 4, what="b takes over")
    waited = time.monotonic() - died
    assert LE.lease_duration_seconds - 1.5 <= waited <= LE.lease_duration_seconds + 3


def test_a_leader_cut_off_stops_before_another_starts(kube: FakeKube, elector: MakeElector) -> None:
    proxy = CuttableProxy(kube.port)
    try:
        a = elector("a", server=proxy.url)
        wait_for(a.is_leader, timeout=5, what="a leads")
        b = elector("b")
        timeline = Timeline({"a": a, "b": b})
        wait_for(lambda: timeline.first("a") is not None, what="a sampled as the leader")
        proxy.cut()
        wait_for(b.is_leader, timeout=LE.lease_duration_seconds + 5, what="b takes over")
        wait_for(lambda: timeline.first("b") is not None, what="b sampled as the leader")
        timeline.stop()
        assert timeline.overlaps() == []
        a_last, b_first = timeline.last("a"), timeline.first("b")
        assert a_last is not None and b_first is not None and a_last < b_first
        assert not a.is_leader()
    finally:
        proxy.close()


def test_state_rides_in_the_lease_and_only_the_leader_writes_it(
    kube: FakeKube, elector: MakeElector
) -> None:
    a = elector("a")
    wait_for(a.is_leader, timeout=5, what="a leads")
    a.write_state('{"v":1,"batches":{}}')
    lease = kube.lease("batchctl-autoscaler")
    assert lease is not None
    assert lease["metadata"]["annotations"][STATE_ANNOTATION] == '{"v":1,"batches":{}}'
    b = elector("b")
    with pytest.raises(NotLeader):
        b.write_state("{}")
    # Renewals keep the annotation, and the next leader reads it.
    a.stop(release=True)
    wait_for(b.is_leader, timeout=5, what="b takes over")
    assert b.read_state() == '{"v":1,"batches":{}}'


def test_decisions_ride_along_at_renewals_and_a_standby_reads_them(
    kube: FakeKube, elector: MakeElector
) -> None:
    a = elector("a")
    wait_for(a.is_leader, timeout=5, what="a leads")
    b = elector("b")
    text = encode_compact(
        1234.5, "a", [DecisionRecord("batch1", 1, 2, "up", "backlog", "400 waiting")]
    )
    renewals = len(kube.requests_to("PUT", r"/leases/batchctl-autoscaler$"))
    a.publish_decisions(text)
    # No request of its own: the next renewal carries it.
    assert len(kube.requests_to("PUT", r"/leases/batchctl-autoscaler$")) == renewals
    wait_for(
        lambda: (
            (kube.lease("batchctl-autoscaler") or {})
            .get("metadata", {})
            .get("annotations", {})
            .get(DECISIONS_ANNOTATION)
            == text
        ),
        timeout=5,
        what="the decisions in the Lease",
    )
    wait_for(lambda: b.leader_decisions() == text, timeout=5, what="b to read them")
    copy = decode_compact(b.leader_decisions())
    assert copy is not None and copy.source == "lease" and copy.leader == "a"
    assert copy.decisions[0].reason == "backlog" and copy.at == 1234.5


def test_stop_ends_the_election_thread_of_a_leader_and_of_a_follower(
    kube: FakeKube, elector: MakeElector
) -> None:
    """The library's loops never end by themselves (a follower retries for ever): a thread
    left calling the API when the process exits aborts it (autoscaler/leader.py)."""
    before = set(threading.enumerate())
    a = elector("a")
    wait_for(a.is_leader, timeout=5, what="a leads")
    b = elector("b")
    wait_for(
        lambda: len(kube.requests_to("GET", r"/leases/batchctl-autoscaler$")) >= 4,
        timeout=10,
        what="b polling the lease as a follower",
    )
    started = [t for t in threading.enumerate() if t not in before and t.name == "leader-election"]
    assert len(started) == 2
    b.stop(release=False)
    a.stop(release=False)
    assert [t for t in started if t.is_alive()] == []
