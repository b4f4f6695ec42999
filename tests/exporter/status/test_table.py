"""`batchctl status` rows: pace, failures, ETA and active tasks beside the queue (pure)."""

from __future__ import annotations

import dataclasses
import re

from batchctl.config import parse_config
from exporter.events.model import EventsView, QueueActivity
from exporter.progress import Progress
from exporter.status.table import render_table, status_json, status_rows
from tests.support.exporter import fixed_snapshot

CFG = parse_config(
    {"kubernetes": {"enabled": False}, "batches": [
        {"queue": "batch0", "deployment": "celery-batch0"},
        {"queue": "batch1", "deployment": "celery-batch1"},
    ]},
    env={},
)  # fmt: skip


def table(text: str) -> dict[str, dict[str, str]]:
    header, *lines = text.splitlines()
    starts = [(m.start(), m.group()) for m in re.finditer(r"\S+(?: \S+)*", header)]
    ends = [s for s, _ in starts[1:]] + [None]
    return {
        line.split()[0]: {n: line[s:e].strip() for (s, n), e in zip(starts, ends, strict=True)}
        for line in lines
    }


def test_with_events_rows_show_pace_failures_eta_and_active() -> None:
    snap = dataclasses.replace(
        fixed_snapshot(),
        events=EventsView(
            True,
            0.0,
            None,
            10,
            (QueueActivity("batch0"), QueueActivity("batch1", 4, 2, 90, 10, True)),
        ),
        progress={
            "batch0": Progress("batch0", None, None, None, None, 0.0, ()),
            "batch1": Progress("batch1", 30.0, "events", 100, 10, 2016.0, ()),
        },
    )
    rows = status_rows(CFG, {}, snap)
    doc = status_json(rows, snap, 0.0, ages_known=True)
    b1 = next(b for b in doc["batches"] if b["queue"] == "batch1")  # type: ignore[attr-defined]
    assert doc["events"] == "up"
    assert (b1["active"], b1["workers"], b1["rate_per_minute"], b1["rate_source"]) == (
        4, 2, 30.0, "events",
    )  # fmt: skip
    assert (b1["completed_recent"], b1["failed_recent"], b1["failure_ratio"]) == (100, 10, 0.1)
    assert b1["eta_seconds"] == 2016.0
    t = table(render_table(rows, 0.0, ages_known=True))
    assert (t["batch1"]["ACTIVE"], t["batch1"]["DONE/MIN"], t["batch1"]["FAILED 10M"]) == (
        "4", "30.0", "10 (10%)",
    )  # fmt: skip
    assert t["batch1"]["ETA"] == "33m36s"
    # batch0: events on, but its workers sent no task event: failures unknown.
    assert t["batch0"]["ACTIVE"] == "0" and t["batch0"]["FAILED 10M"] == "no events"


def test_without_events_the_rate_is_an_estimate_and_the_rest_says_no_events() -> None:
    snap = dataclasses.replace(
        fixed_snapshot(),
        progress={"batch1": Progress("batch1", 0.0, "estimate", None, None, None, ())},
    )
    rows = status_rows(CFG, {}, snap)
    doc = status_json(rows, snap, 0.0, ages_known=True)
    assert doc["events"] == "off"
    b1 = next(b for b in doc["batches"] if b["queue"] == "batch1")  # type: ignore[attr-defined]
    assert (b1["active"], b1["failed_recent"], b1["rate_source"]) == (None, None, "estimate")
    t = table(render_table(rows, 0.0, ages_known=True))
    assert t["batch1"]["ACTIVE"] == "no events" and t["batch1"]["FAILED 10M"] == "no events"
    assert t["batch1"]["DONE/MIN"] == "~0.0 (estimate)" and t["batch1"]["ETA"] == "stalled"


def test_claims_that_could_not_be_read_are_unknown_not_free() -> None:
    rows = status_rows(CFG, {}, fixed_snapshot())
    assert {r["HOLDER"] for r in table(render_table(rows, 0.0, True)).values()} == {"-"}
    unknown = table(render_table(rows, 0.0, True, claims_known=False))
    assert {r["HOLDER"] for r in unknown.values()} == {"?"}
