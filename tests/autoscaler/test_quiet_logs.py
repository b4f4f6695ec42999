"""Cheap, honest defaults of the loop: a decision is logged when it changes, and every
tick only at debug level; the events consumer is not "up" through a broker that is down."""

from __future__ import annotations

import structlog

from autoscaler.backends.dryrun import DryRunBackend
from autoscaler.loop import Autoscaler
from batchctl.config import parse_config
from batchctl.log import configure_logging
from exporter.events.model import EventsView
from exporter.live import Live
from exporter.snapshot import QueueStats, Snapshot
from tests.support.autoscaler import FixedSource


def test_decisions_are_logged_when_they_change() -> None:
    cfg = parse_config({"kubernetes": {"enabled": False}}, env={})
    queues = tuple(
        QueueStats(b.queue, 0, {}, 0, 0.0, 0, True, b.deployment, 0, 0) for b in cfg.batches
    )
    clock = iter(range(1_000_000, 2_000_000, 15))
    source = FixedSource(Snapshot(0.0, 0.0, broker_up=True, kubernetes_up=None, queues=queues))
    scaler = Autoscaler(
        cfg, source, DryRunBackend([b.queue for b in cfg.batches], track=True),
        clock=lambda: float(next(clock)),
    )  # fmt: skip
    # As `--log-level debug` runs it (another test may have configured info).
    configure_logging("debug")
    with structlog.testing.capture_logs() as logs:
        for _ in range(10):
            source.snap = Snapshot(float(next(clock)), 0.0, broker_up=True, kubernetes_up=None,
                                   queues=queues)  # fmt: skip
            scaler.tick()
    decisions = [e for e in logs if e["event"] == "decision"]
    info = [e for e in decisions if e["log_level"] == "info"]
    debug = [e for e in decisions if e["log_level"] == "debug"]
    assert len(info) == len(cfg.batches)  # once each: nothing changed after
    assert len(debug) == 9 * len(cfg.batches)
    assert {e["reason"] for e in info} == {"steady"}


def test_events_are_not_up_while_the_broker_is_down() -> None:
    cfg = parse_config({"kubernetes": {"enabled": False}}, env={})

    class Connected:
        def view(self, now: float) -> EventsView:
            return EventsView(up=True, since=0.0, received=5)

        def stop(self) -> None:
            pass

    live = Live(cfg, Connected())  # type: ignore[arg-type]
    down = live(Snapshot(1.0, 0.0, broker_up=False, kubernetes_up=None, broker_error="timeout"))
    assert down.events is not None and down.events.up is False
    assert down.events.error == "the broker is down: timeout"
    up = live(Snapshot(2.0, 0.0, broker_up=True, kubernetes_up=None))
    assert up.events is not None and up.events.up is True
