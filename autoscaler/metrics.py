"""The autoscaler's own metrics, built from its last tick on every scrape."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from autoscaler.policy import Action, effective_cap

if TYPE_CHECKING:
    from autoscaler.loop import Autoscaler


class AutoscalerMetrics(Collector):
    def __init__(self, autoscaler: Autoscaler) -> None:
        self.autoscaler = autoscaler

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[Any]:
        a = self.autoscaler
        desired = GaugeMetricFamily(
            "celery_autoscaler_desired_replicas",
            "Replicas the autoscaler decided on at its last tick.",
            labels=["queue"],
        )
        cap = GaugeMetricFamily(
            "celery_autoscaler_max_replicas",
            "The batch's replica cap (max_replicas within the size bands).",
            labels=["queue"],
        )
        hold = GaugeMetricFamily(
            "celery_autoscaler_hold",
            "1 while the autoscaler holds a batch that it would otherwise change, by reason.",
            labels=["queue", "reason"],
        )
        decisions = CounterMetricFamily(
            "celery_autoscaler_decisions",
            "Decisions taken, by action (up/down/hold/none) and reason.",
            labels=["queue", "action", "reason"],
        )
        errors = CounterMetricFamily(
            "celery_autoscaler_errors",
            "Failures to read or act, by kind (actuator, claims, guards).",
            labels=["queue", "kind"],
        )
        for b in a.cfg.batches:
            cap.add_metric([b.queue], effective_cap(b))
        for d in a.last_decisions:
            desired.add_metric([d.queue], d.desired)
            if d.action == Action.HOLD:
                hold.add_metric([d.queue, str(d.reason)], 1)
        for (queue, action, reason), n in sorted(a.decisions_total.items()):
            decisions.add_metric([queue, action, reason], n)
        for (queue, kind), n in sorted(a.errors_total.items()):
            errors.add_metric([queue, kind], n)
        leader = GaugeMetricFamily(
            "celery_autoscaler_is_leader", "1 if this instance is the one that scales."
        )
        leader.add_metric([], 1 if a.is_leader else 0)
        tick = GaugeMetricFamily(
            "celery_autoscaler_last_tick_timestamp_seconds", "When the last tick finished."
        )
        tick.add_metric([], a.last_tick_at)
        # Claims are the exporter's (celery_batch_claimed), read in its scrape.
        yield from (desired, cap, hold, decisions, errors, leader, tick)
