"""The autoscaler's own metrics, built from its last tick on every scrape.

Names, types, help texts and label names come from batchctl.metrics, the table that
alerts/ and grafana/ read too.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from autoscaler.policy import Action, Reason, effective_cap
from batchctl.metrics import (
    AUTOSCALER_BUSY_STOPS,
    AUTOSCALER_DECISIONS,
    AUTOSCALER_DESIRED,
    AUTOSCALER_ERRORS,
    AUTOSCALER_HOLD,
    AUTOSCALER_IS_LEADER,
    AUTOSCALER_LAST_TICK,
    AUTOSCALER_MAX,
    AUTOSCALER_REPLICA_SECONDS,
    Spec,
)

if TYPE_CHECKING:
    from autoscaler.loop import Autoscaler


# Reasons for which nothing could be decided (the broker, the snapshot or the replicas
# unknown): the batch is held whatever it needed, and the hold series says why.
BLIND = frozenset({Reason.NO_DATA, Reason.REPLICAS_UNKNOWN})


def family(spec: Spec) -> GaugeMetricFamily | CounterMetricFamily:
    """An empty family for `spec`; a counter's name loses `_total` (the library adds it)."""
    cls = CounterMetricFamily if spec.kind == "counter" else GaugeMetricFamily
    return cls(spec.name, spec.help, labels=list(spec.labels))


class AutoscalerMetrics(Collector):
    def __init__(self, autoscaler: Autoscaler) -> None:
        self.autoscaler = autoscaler

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[Any]:
        a = self.autoscaler
        desired = family(AUTOSCALER_DESIRED)
        cap = family(AUTOSCALER_MAX)
        hold = family(AUTOSCALER_HOLD)
        decisions = family(AUTOSCALER_DECISIONS)
        errors = family(AUTOSCALER_ERRORS)
        for b in a.cfg.batches:
            cap.add_metric([b.queue], effective_cap(b))
        for d in a.last_decisions:
            desired.add_metric([d.queue], d.desired)
            if d.action == Action.HOLD or d.reason in BLIND:
                hold.add_metric([d.queue, str(d.reason)], 1)
        for (queue, action, reason), n in sorted(a.decisions_total.items()):
            decisions.add_metric([queue, action, reason], n)
        for (queue, kind), n in sorted(a.errors_total.items()):
            errors.add_metric([queue, kind], n)
        leader = family(AUTOSCALER_IS_LEADER)
        leader.add_metric([], 1 if a.is_leader else 0)
        tick = family(AUTOSCALER_LAST_TICK)
        tick.add_metric([], a.last_tick_at)
        # Every batch, 0 included: a site watches this one stay at 0.
        busy = family(AUTOSCALER_BUSY_STOPS)
        used = family(AUTOSCALER_REPLICA_SECONDS)
        for b in a.cfg.batches:
            busy.add_metric([b.queue], a.busy.busy_stops.get(b.queue, 0))
            used.add_metric([b.queue], a.usage.total.get(b.queue, 0.0))
        # Claims are the exporter's (celery_batch_claimed), read in its scrape.
        yield from (desired, cap, hold, decisions, errors, leader, tick, busy, used)
