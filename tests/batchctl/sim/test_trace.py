"""Traces: parsing, validation with explained errors, the lognormal durations."""

from __future__ import annotations

import random
import statistics
from pathlib import Path
from typing import Any

import pytest

from batchctl.sim import TraceError, load_trace, lognormal_params, parse_trace
from tests.support.sim import TRACES, trace


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
        # Counts and seconds are whole numbers: 3.5 messages were silently 3, and a
        # second written 1e9 (YAML 1.1 reads it as a string) an int() traceback's text.
        ({"arrivals": [[0, 3.5]]}, "arrivals[0]: second and count must be whole numbers"),
        ({"arrivals": [[0, 1], ["1e9", 3]]}, "arrivals[1]: second and count must be whole"),
        ({"arrivals": [[True, 3]]}, "arrivals[0]: second and count must be whole numbers"),
        # Milliseconds by mistake: refused, not a simulation that runs for days.
        ({"arrivals": [[0, 3], [1_000_000_000, 3]]}, "arrivals[1]: second 1000000000 is more"),
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


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"task_seconds": None}, "task_seconds is missing: add e.g. task_seconds: {mean: 2.0"),
        ({"task_seconds": [2, 8]}, "task_seconds: expected a mapping, e.g. task_seconds: {"),
        ({"task_seconds": {"mean": 2.0}}, "task_seconds.p99 is missing: give both, e.g."),
        ({"task_seconds": {"p99": 8.0}}, "task_seconds.mean is missing"),
    ],
)
def test_a_missing_task_seconds_is_named(data: dict[str, Any], message: str) -> None:
    base: dict[str, Any] = {"arrivals": [[0, 1]], **data}
    with pytest.raises(TraceError) as info:
        parse_trace(base, "t")
    assert str(info.value).startswith(f"t: {message}"), str(info.value)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "a binary file, not a YAML trace"),
        (b"name: caf\xe9\n", "not UTF-8 text (byte 0xe9 at offset 9); save it as UTF-8"),
        (
            b"arrivals: [[0, 1]\n",
            "not valid YAML at line 2, column 1: expected ',' or ']', but got '<stream end>'",
        ),
    ],
)
def test_an_unreadable_trace_file_is_one_line(tmp_path: Path, content: bytes, message: str) -> None:
    f = tmp_path / "t.yaml"
    f.write_bytes(content)
    with pytest.raises(TraceError) as info:
        load_trace(f)
    assert str(info.value) == f"{f}: {message}"
