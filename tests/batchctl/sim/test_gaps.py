"""The gaps between work in the simulator: quiet hours of small bursts cost a replica only
while there is work, starts from zero at most once per interval, and the diurnal trace
within 1.5x its physical floor (issue 23; benchmarks/README.md has the tables)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from batchctl.config import Config, load_config
from batchctl.sim import OURS, load_trace, simulate
from tests.support.paths import ROOT
from tests.support.sim import TRACES, cfg, trace

# An hour of night: 3 tasks of ~2 s every minute (the diurnal trace's quiet hours).
NIGHT = {"arrivals": [[60 * i, 3] for i in range(60)]}


def night(**batch: Any) -> dict[str, Any]:
    return simulate(trace(**NIGHT), cfg(**batch), baseline=None, events=True)[OURS].metrics


def test_a_night_of_small_bursts() -> None:
    today = night(adaptive_idle=False, from_zero_interval_seconds=0)
    gaps = night()
    every_burst = night(from_zero_interval_seconds=0)
    # Today one replica waits out idle_after between bursts all hour long.
    assert today["scale_actions"] <= 2
    # Going at once when the gaps are longer than a start, and starting at most once per
    # 180 s: a fraction of the cost, with a start (and a stop) per interval.
    assert gaps["replica_seconds"] < 0.5 * today["replica_seconds"]
    assert gaps["scale_actions"] <= 2 * (3600 // 180 + 1)
    # Without the interval a start per burst: more actions, and more replica-seconds.
    assert every_burst["scale_actions"] > 2 * gaps["scale_actions"]
    assert every_burst["replica_seconds"] > gaps["replica_seconds"]
    for m in (today, gaps, every_burst):
        assert (m["running_at_stop"], m["inflight_interrupted"], m["left_undone"]) == (0, 0, 0)
    # No task waits longer than the interval and a pod's start (20 s) and a tick (15 s).
    assert gaps["max_wait_seconds"] <= 180 + 20 + 15


def test_without_events_the_idle_gaps_change_nothing() -> None:
    """No completions or busy map: a task that runs between two ticks is invisible, so
    the gaps are not trusted and idle_after decides, as before. (The one-start-per-interval
    rule needs no events; on this night trace it does not bind, hence the equality.)"""
    t = trace(**NIGHT)
    blind = simulate(t, cfg(), baseline=None, events=False)[OURS].metrics
    before = simulate(
        t, cfg(adaptive_idle=False, from_zero_interval_seconds=0), baseline=None, events=False
    )[OURS].metrics
    assert blind == before


@pytest.mark.parametrize(
    "config",
    [load_config(ROOT / "benchmarks" / "suite-config.yaml"), load_config(None)],
    ids=["suite config", "defaults"],
)
def test_diurnal_within_one_and_a_half_times_its_floor(config: Config) -> None:
    t = load_trace(TRACES / "diurnal.yaml")
    m = simulate(t, config, baseline=None, events=True)[OURS].metrics
    assert m["floor_ratio"] <= 1.5
    # Done when the arrivals are, but for the last burst's wait (the interval) and start.
    assert m["completion_seconds"] <= t.last_arrival + 180 + 20 + 15
    assert (m["running_at_stop"], m["inflight_interrupted"], m["left_undone"]) == (0, 0, 0)
    assert m["cap_violations"] == 0
    # At most a start and a stop per interval, all day.
    assert m["scale_actions"] <= 2 * 86_400 // 180


def without_gaps(config: Config) -> Config:
    """`config` with the quiet-hours rules off: the policy before them (issue 23's today)."""
    off = {"adaptive_idle": False, "from_zero_interval_seconds": 0}
    return config.model_copy(
        update={"batches": tuple(b.model_copy(update=off) for b in config.batches)}
    )


# Diurnal's completion is bounded above (the last arrival + interval + start + tick).
OTHERS = sorted(p for p in TRACES.glob("*.yaml") if p.stem != "diurnal")


@pytest.mark.parametrize("path", OTHERS, ids=[p.stem for p in OTHERS])
@pytest.mark.parametrize(
    "config",
    [load_config(ROOT / "benchmarks" / "suite-config.yaml"), load_config(None)],
    ids=["suite config", "defaults"],
)
def test_every_standard_trace_completes_within_a_quarter_of_before(
    path: Path, config: Config
) -> None:
    """Issue 23: closer to the floor "while every trace still completes within 1.25x of
    today's completion time", at no more replica-seconds than before."""
    t = load_trace(path)
    now = simulate(t, config, baseline=None, events=True)[OURS].metrics
    before = simulate(t, without_gaps(config), baseline=None, events=True)[OURS].metrics
    assert now["left_undone"] == before["left_undone"] == 0
    assert now["completion_seconds"] <= 1.25 * before["completion_seconds"], (now, before)
    assert now["replica_seconds"] <= before["replica_seconds"]
