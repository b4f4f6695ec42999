"""Traces: parsing, validation with explained errors, the lognormal durations."""

from __future__ import annotations

import random
import statistics
from typing import Any

import pytest

from batchctl.sim import TraceError, load_trace, lognormal_params, parse_trace
from tests.batchctl.sim.helpers import TRACES, trace


def test_lognormal_matches_mean_and_p99() -> None:
    mu, sigma = lognormal_params(2.0, 8.0)
    rng = random.Random(7)
    xs = sorted(rng.lognormvariate(mu, sigma) for _ in range(200_000))
    assert statistics.fmean(xs) == pytest.approx(2.0, rel=0.02)
    assert xs[int(0.99 * len(xs))] == pytest.approx(8.0, rel=0.03)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"arrivals": []}, "arrivals"),
        ({"arrivals": [[0]]}, "arrivals[0]"),
        ({"arrivals": [[-1, 3]]}, ">= 0"),
        ({"task_seconds": {"mean": 1.0, "p99": 100.0}}, "too skewed"),
        ({"task_seconds": {"mean": 5.0, "p99": 1.0}}, "mean <= p99"),
        ({"priorities": {0: 0.0}}, "positive total"),
        ({"worker_concurency": 4}, "unknown key"),
        ({"worker_concurrency": 0}, "worker_concurrency"),
    ],
)
def test_bad_traces_are_explained(data: dict[str, Any], message: str) -> None:
    base: dict[str, Any] = {"task_seconds": {"mean": 2.0, "p99": 8.0}, "arrivals": [[0, 1]]}
    base.update(data)
    with pytest.raises(TraceError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_trace(base, "t")


def test_priority_forms() -> None:
    assert trace(priorities=[0.5, 0, 0, 0.5]).priorities == ((0, 0.5), (9, 0.5))
    assert trace(priorities=[[0, 1], [3, 3]]).priorities == ((0, 0.25), (3, 0.75))


def test_the_standard_traces_load() -> None:
    names = {p.stem for p in TRACES.glob("*.yaml")}
    assert {"burst", "trickle", "diurnal", "spikes", "priority-heavy"} <= names
    for path in TRACES.glob("*.yaml"):
        assert load_trace(path).total > 0
