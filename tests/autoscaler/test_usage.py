"""What batches and claims used, in replica-seconds (autoscaler/usage.py, pure)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from autoscaler.usage import FLUSH_SECONDS, Usage
from batchctl.claims import Claim
from tests.support.policy import obs

ALICE = Claim("batch0", "alice", "reindex", "", 0.0, 1e9)
BOB = Claim("batch0", "bob", "dedupe", "", 500.0, 1e9)


class Keeper:
    """Records add_usage; fails while `down`."""

    def __init__(self) -> None:
        self.added: list[tuple[str, str, float]] = []
        self.down = False

    def end_drain(self, queue: str, seen: Claim, now: float, detail: str) -> None: ...

    def note_expired(self, queue: str, seen: Claim, now: float) -> None: ...

    def add_usage(self, queue: str, seen: Claim, replica_seconds: float) -> None:
        if self.down:
            raise ConnectionError("store down")
        self.added.append((queue, seen.holder, replica_seconds))


def test_replicas_times_seconds_per_batch_and_per_claim() -> None:
    u, k = Usage(), Keeper()
    u.count([obs(replicas=3, claim=ALICE)], 0.0)  # the first tick only starts the clock
    u.count([obs(replicas=3, claim=ALICE)], 15.0)
    u.count([obs(replicas=1, claim=ALICE)], 30.0)
    assert u.total == {"batch0": 3 * 15 + 1 * 15}
    assert u.flush(k, 30.0) == [] and k.added == []  # not due yet
    u.count([obs(replicas=1, claim=ALICE)], FLUSH_SECONDS + 15)
    u.flush(k, FLUSH_SECONDS + 15)
    assert k.added == [("batch0", "alice", 60 + FLUSH_SECONDS - 15)]


def test_no_data_counts_nothing_and_starts_over() -> None:
    u = Usage()
    u.count([obs(replicas=2)], 0.0)
    u.count([obs(replicas=2, data_ok=False)], 15.0)
    u.count([obs(replicas=2)], 30.0)  # starts the clock again: 15 s not counted twice
    u.count([obs(replicas=2)], 45.0)
    assert u.total == {"batch0": 30.0}


def test_a_new_claim_gets_its_own_and_the_old_ones_is_written() -> None:
    u, k = Usage(), Keeper()
    u.count([obs(replicas=2, claim=ALICE)], 0.0)
    u.count([obs(replicas=2, claim=ALICE)], 10.0)
    u.count([obs(replicas=2, claim=BOB)], 20.0)
    u.flush(k, 20.0)
    assert k.added == [("batch0", "alice", 20.0)]  # bob's is not due yet
    u.flush(k, 20.0, force=True)
    assert k.added[-1] == ("batch0", "bob", 20.0)


@pytest.mark.parametrize("claim", [replace(ALICE, draining_since=5.0)], ids=["draining"])
def test_a_draining_claims_usage_is_written_at_once(claim: Claim) -> None:
    u, k = Usage(), Keeper()
    u.count([obs(replicas=2, claim=claim)], 0.0)
    u.count([obs(replicas=2, claim=claim)], 15.0)
    u.flush(k, 15.0)
    assert k.added == [("batch0", "alice", 30.0)]


def test_a_store_that_is_down_keeps_the_amount_for_the_next_tick() -> None:
    u, k = Usage(), Keeper()
    u.count([obs(replicas=1, claim=ALICE)], 0.0)
    u.count([obs(replicas=1, claim=ALICE)], 15.0)  # pending from here on
    u.count([obs(replicas=1, claim=ALICE)], 15.0 + FLUSH_SECONDS)
    k.down = True
    assert u.flush(k, 15.0 + FLUSH_SECONDS) == ["batch0"]
    k.down = False
    u.count([obs(replicas=1, claim=ALICE)], 30.0 + FLUSH_SECONDS)
    assert u.flush(k, 30.0 + FLUSH_SECONDS) == []
    assert k.added == [("batch0", "alice", 30.0 + FLUSH_SECONDS)]
