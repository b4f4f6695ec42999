"""Deadlines in the simulator (`batchctl simulate --finish-by`): met, impossible and missed,
as one table; and the CLI's JSON."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from batchctl.cli import cli
from batchctl.sim import OURS, report, simulate
from tests.support.sim import cfg, trace


@dataclass(frozen=True)
class Case:
    name: str
    trace: dict[str, Any]
    finish_by: float  # seconds after the start
    feasible: bool  # the caps can make it, planned at the start
    met: bool  # our run was done by then
    # Replicas the plan says it needs, at least work / (rate x 90% of the time) and a
    # little more for the ramp (2 a minute) and the pods' start; None: no number can.
    needed: tuple[int, int] | None


# 2 s tasks, 4 slots per replica: 2 tasks/s per replica; cap 5, 2 replicas a minute.
CASES = [
    Case("met with room to spare", {"arrivals": [[0, 4000]]}, 1800, True, True, (2, 2)),
    Case("met at the cap", {"arrivals": [[0, 4000]]}, 600, True, True, (4, 5)),
    Case("impossible: more than the cap", {"arrivals": [[0, 8000]]}, 600, False, False, (8, 12)),
    Case("impossible: no number of replicas", {"arrivals": [[0, 8000]]}, 120, False, False, None),
    Case("impossible: work arrives after it", {"arrivals": [[0, 100], [900, 100]]}, 600,
         False, False, (1, 1)),
    # Planned feasible, but the cluster has room for one pod only: behind, and missed.
    Case("missed: pods that never become ready", {"arrivals": [[0, 4000]], "max_ready_pods": 1},
         1200, True, False, (2, 3)),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_deadlines(case: Case) -> None:
    t = trace(**case.trace)
    config = cfg(step_up=2)
    results = simulate(t, config, finish_by=case.finish_by, events=True)
    doc = report(t, config, results, finish_by=case.finish_by)
    d = doc["deadline"]
    assert d["feasible"] is case.feasible, d
    if case.needed is None:
        assert d["replicas_needed"] is None, d
    else:
        assert case.needed[0] <= d["replicas_needed"] <= case.needed[1], d
    ours = doc["policies"][OURS]
    assert ours["deadline_met"] is case.met, ours["completion_seconds"]
    assert ours["left_undone"] == 0 and ours["running_at_stop"] == 0


def test_a_deadline_paces_with_fewer_replicas_than_the_drain_target() -> None:
    """The same work with an hour to spare: fewer replicas at once, fewer replica-seconds,
    done in time."""
    t = trace(arrivals=[[0, 6000]])
    config = cfg(step_up=2)
    fast = simulate(t, config, baseline=None, events=True)[OURS].metrics
    paced = simulate(t, config, baseline=None, events=True, finish_by=3600)[OURS].metrics
    assert paced["peak_replicas"] < fast["peak_replicas"]
    assert paced["replica_seconds"] < fast["replica_seconds"]
    assert paced["deadline_met"] and paced["completion_seconds"] > fast["completion_seconds"]


def test_simulate_cli_reports_an_impossible_deadline(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(
        yaml.safe_dump({"task_seconds": {"mean": 2.0, "p99": 8.0}, "arrivals": [[0, 20000]]})
    )
    r = CliRunner().invoke(cli, ["simulate", str(path), "--finish-by", "30m", "-o", "json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["deadline"]["feasible"] is False, (doc["deadline"], doc["config"], doc["trace"])
    assert doc["deadline"]["replicas_needed"] > 5
    assert doc["policies"][OURS]["deadline_met"] is False
    assert (
        doc["policies"][OURS]["running_at_stop"]
        == doc["policies"][OURS]["inflight_interrupted"]
        == 0
    )
    r = CliRunner().invoke(cli, ["simulate", str(path), "--finish-by", "30m"])
    assert "NOT feasible: needs" in r.stdout and "deadline met" in r.stdout
