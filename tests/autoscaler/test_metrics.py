"""The autoscaler's collector publishes exactly the families of AUTOSCALER_SPECS."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest as text_latest
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics_latest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families as parse_text

from autoscaler.loop import Autoscaler
from autoscaler.metrics import AutoscalerMetrics
from batchctl.claims import Claim
from batchctl.config import parse_config
from batchctl.metrics import AUTOSCALER_SPECS
from exporter.snapshot import QueueStats, Snapshot

NOW = 1_700_000_000.0


class FixedCollector:
    """Stands in for the exporter's collector: always the same snapshot."""

    def __init__(self, snap: Snapshot) -> None:
        self.snap = snap

    def collect(self) -> Snapshot:
        return self.snap


class FailingBackend:
    """Workers at 0 replicas that cannot be scaled: every change counts an error."""

    name = "failing"

    def observed(self) -> Mapping[str, tuple[int, int]] | None:
        return {"batch0": (0, 0), "batch1": (0, 0)}

    def set_replicas(self, queue: str, n: int) -> None:
        raise ConnectionError("cannot scale in this test")

    def other_controllers(self) -> None:
        return None

    def busy_map(self, queue: str, workers: object, selector: object) -> None:
        return None

    def waiting(self, queue: str, note: object) -> None:
        pass

    def close(self) -> None:
        pass


@pytest.fixture
def registry() -> CollectorRegistry:
    cfg = parse_config(
        {
            "broker": {"url": "redis://127.0.0.1:9/0"},
            "kubernetes": {"enabled": False},
            "batches": [
                {"queue": "batch0", "deployment": "celery-batch0"},
                {"queue": "batch1", "deployment": "celery-batch1"},
            ],
            "autoscaler": {"backend": "dry-run"},
        },
        env={},
    )
    # Work waits in both batches; only batch0 is claimed, so batch1 is held (unclaimed)
    # and batch0's scale-up fails: every family gets a sample.
    queues = tuple(
        QueueStats(q, 20, {0: 20}, 0, 5.0, 1000, configured=True) for q in ("batch0", "batch1")
    )
    claim = Claim("batch0", "alice", "test", "", NOW - 60, NOW + 3600)
    snap = Snapshot(
        taken_at=NOW,
        duration_seconds=0.01,
        broker_up=True,
        kubernetes_up=None,
        queues=queues,
        claims={"batch0": claim},
    )
    scaler = Autoscaler(cfg, FixedCollector(snap), FailingBackend(), clock=lambda: NOW)  # type: ignore[arg-type]
    scaler.tick()
    registry = CollectorRegistry()
    registry.register(AutoscalerMetrics(scaler))
    return registry


@pytest.mark.parametrize("openmetrics", [False, True], ids=["text", "openmetrics"])
def test_publishes_exactly_the_table(registry: CollectorRegistry, openmetrics: bool) -> None:
    encode, parse = (
        (openmetrics_latest, parse_openmetrics) if openmetrics else (text_latest, parse_text)
    )
    published = {f.name: f for f in parse(encode(registry).decode())}
    # Both parsers name a counter's family without `_total`; its samples keep it.
    expected = {
        s.name.removesuffix("_total") if s.kind == "counter" else s.name: s
        for s in AUTOSCALER_SPECS
    }
    assert sorted(published) == sorted(expected)
    for name, spec in expected.items():
        family = published[name]
        assert (family.type, family.documentation) == (spec.kind, spec.help), name
        assert family.samples, f"{name} has no sample, so its labels go unchecked"
        for sample in family.samples:
            assert sample.name == spec.name
            assert sorted(sample.labels) == sorted(spec.labels), name
