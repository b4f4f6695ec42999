"""A claim's deadline and cost on the status page and in `batchctl status` (pure): behind
when its work would be done after the deadline at its pace, or nothing drains."""

from __future__ import annotations

import dataclasses
import math

import pytest

from batchctl.claims import Claim
from batchctl.config import parse_config
from batchctl.cost import Prices
from exporter.progress import Progress
from exporter.snapshot import Snapshot
from exporter.stats import expected_finish
from exporter.status.deadline import BEHIND, ON_PACE, deadline_state, deadline_text
from exporter.status.page import render_status
from exporter.status.table import status_json, status_rows
from tests.support.exporter import fixed_snapshot

NOW = 0.0  # the fixed snapshot's time
HOUR = 3600.0
CFG = parse_config(
    {
        "kubernetes": {"enabled": False},
        "cost": {"price_per_replica_hour": 0.4, "co2e_grams_per_replica_hour": 50},
        "batches": [
            {"queue": "batch0", "deployment": "celery-batch0"},
            {"queue": "batch1", "deployment": "celery-batch1"},
        ],
    },
    env={},
)


def with_deadline(finish_by: float, eta: float | None, used: float = 0.0) -> Snapshot:
    """batch1 (1,008 waiting and in flight) claimed with a deadline, its pace's ETA."""
    claim = Claim("batch1", "alice", "reindex", "", NOW - HOUR, NOW + 8 * HOUR)
    claim = dataclasses.replace(claim, finish_by=finish_by, replica_seconds=used)
    progress = Progress("batch1", 30.0 if eta else 0.0, "events", eta_seconds=eta)
    return dataclasses.replace(
        fixed_snapshot(), claims={"batch1": claim}, progress={"batch1": progress}
    )


@pytest.mark.parametrize(
    ("finish_by", "eta", "expected", "state"),
    [
        (2 * HOUR, HOUR, NOW + HOUR, ON_PACE),
        (HOUR, 2 * HOUR, NOW + 2 * HOUR, BEHIND),
        (HOUR, None, math.inf, BEHIND),  # work left, nothing drains
    ],
    ids=["on pace", "behind at its pace", "behind: nothing drains"],
)
def test_behind_or_on_pace(
    finish_by: float, eta: float | None, expected: float, state: str
) -> None:
    snap = with_deadline(NOW + finish_by, eta)
    assert expected_finish(snap, "batch1") == expected
    claim = snap.claims["batch1"]
    assert deadline_state(claim, expected, NOW) == state
    assert deadline_text(claim, expected, NOW).startswith("finish by ")


def test_no_deadline_no_expected_finish() -> None:
    assert expected_finish(fixed_snapshot(), "batch1") is None


def test_status_json_and_table_say_behind_and_what_it_cost() -> None:
    snap = with_deadline(NOW + HOUR, 2 * HOUR, used=1.5 * HOUR)
    rows = status_rows(CFG, snap.claims, snap)
    (b1,) = [b for b in status_json(rows, snap, NOW, True)["batches"] if b["queue"] == "batch1"]  # type: ignore[attr-defined]
    assert (b1["deadline"], b1["expected_finish"]) == (BEHIND, NOW + 2 * HOUR)
    assert b1["cost"] == {
        "replica_seconds": 5400.0,
        "replica_hours": 1.5,
        "cost": 0.6,
        "currency": "USD",
        "co2e_grams": 75.0,
    }
    from exporter.status.table import render_table

    text = render_table(rows, NOW, True)
    assert "behind, done about" in text and "used 1.50 replica-hours, 0.60 USD, 75 g CO2e" in text


def test_the_status_page_flags_a_batch_behind_its_deadline() -> None:
    snap = with_deadline(NOW + HOUR, 2 * HOUR, used=HOUR)
    page = render_status(snap, (100, 500, 1000), 5, NOW, batches=CFG.batches, prices=CFG.prices_of)
    assert 'data-deadline="behind"' in page
    assert "used 1.00 replica-hours, 0.40 USD, 50 g CO2e" in page
    on_pace = render_status(with_deadline(NOW + 3 * HOUR, HOUR), (100, 500, 1000), 5, NOW)
    assert 'data-deadline="on-pace"' in on_pace and 'data-deadline="behind"' not in on_pace


def test_without_prices_only_replica_hours() -> None:
    snap = with_deadline(NOW + HOUR, HOUR, used=HOUR)
    page = render_status(snap, (100, 500, 1000), 5, NOW, prices=lambda q: Prices())
    assert "used 1.00 replica-hours<" in page
