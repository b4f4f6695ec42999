"""Shared builders for the simulator tests: a small trace and a one-batch config."""

from __future__ import annotations

from typing import Any

from batchctl.config import Config, parse_config
from batchctl.sim import Trace, parse_trace
from tests.support.paths import ROOT

TRACES = ROOT / "benchmarks" / "traces"


def trace(**kw: Any) -> Trace:
    base: dict[str, Any] = {
        "task_seconds": {"mean": 2.0, "p99": 8.0},
        "worker_concurrency": 4,
        "prefetch_multiplier": 4,
        "pod_start_seconds": 20,
        "arrivals": [[0, 600]],
    }
    base.update(kw)
    return parse_trace(base, "test")


def cfg(**batch: Any) -> Config:
    return parse_config({"batches": [{"queue": "batch0", "deployment": "celery-batch0", **batch}]})
