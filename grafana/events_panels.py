"""The dashboard's row from Celery's task events: throughput, failures, run times, active
tasks, workers and the ETA. Every panel says "no events" when there are none (events
off, or workers without -E)."""

from __future__ import annotations

from grafana_foundation_sdk.models import dashboard as dm

from batchctl import metrics as n
from batchctl.config import Config
from grafana.panels import QUEUES, AnyPanel, _query, _sel, _timeseries

NO_EVENTS = "no events"
FINISHED = 'state=~"succeeded|failed"'
FAILED = 'state="failed"'


def events_panels(cfg: Config) -> list[AnyPanel]:
    """From Celery's task events (events.enabled, workers with -E). Each exporter counts
    the same events: per queue the largest of their values, never their sum."""
    sel = cfg.alerts.selector
    events = n.TASK_EVENTS.name

    def per_queue(expr: str) -> str:
        return f"max by (queue) (\n  {expr}\n)"

    def completions(which: str, window: str = "$__rate_interval") -> str:
        return f"sum without (task, state) (rate({_sel(events, sel, QUEUES, which)}[{window}]))"

    throughput = (
        _timeseries(
            "Completed per minute",
            "Tasks that succeeded or failed, per minute, from Celery's task events. "
            "Without events the status page estimates it from the fall of the queue.",
            dm.GridPos(h=8, w=8, x=0, y=45),
        )
        .with_target(_query(per_queue(completions(FINISHED)) + " * 60", "{{queue}}", "A"))
        .unit("short")
        .no_value(NO_EVENTS)
    )
    failures = (
        _timeseries(
            "Failure ratio (10 min)",
            "failed / (succeeded + failed) over the last 10 minutes, per queue: what "
            "CeleryTaskFailureRatioHigh alerts on.",
            dm.GridPos(h=8, w=8, x=8, y=45),
        )
        .with_target(
            _query(
                per_queue(f"{completions(FAILED, '10m')}\n  /\n  {completions(FINISHED, '10m')}"),
                "{{queue}}",
                "A",
            )
        )
        .unit("percentunit")
        .max(1)
        .no_value(NO_EVENTS)
    )
    bucket = _sel(f"{n.TASK_RUNTIME.name}_bucket", sel, QUEUES)
    buckets = f"max by (queue, le) (rate({bucket}[$__rate_interval]))"
    runtime = (
        _timeseries(
            "Task run time p50 / p95",
            "Run time of tasks that succeeded (their task-succeeded event), per queue.",
            dm.GridPos(h=8, w=8, x=16, y=45),
        )
        .with_target(
            _query(
                f"histogram_quantile(0.5, {buckets})",
                "p50 {{queue}}",
                "A",
            )
        )
        .with_target(
            _query(
                f"histogram_quantile(0.95, {buckets})",
                "p95 {{queue}}",
                "B",
            )
        )
        .unit("s")
        .no_value(NO_EVENTS)
    )
    active = (
        _timeseries(
            "Active tasks",
            "Tasks executing now (task events, reconciled with the workers' heartbeats). "
            "With Celery's default early acknowledgement they are in no Redis structure.",
            dm.GridPos(h=8, w=8, x=0, y=53),
        )
        .with_target(
            _query(f"max by (queue) ({_sel(n.QUEUE_ACTIVE.name, sel, QUEUES)})", "{{queue}}")
        )
        .unit("short")
        .decimals(0)
        .no_value(NO_EVENTS)
    )
    workers = (
        _timeseries(
            "Workers (by heartbeats)",
            "Celery workers consuming each queue now, alive by their heartbeats.",
            dm.GridPos(h=8, w=8, x=8, y=53),
        )
        .with_target(
            _query(f"max by (queue) ({_sel(n.QUEUE_WORKERS.name, sel, QUEUES)})", "{{queue}}")
        )
        .unit("short")
        .decimals(0)
        .no_value(NO_EVENTS)
    )
    work = (
        f"max by (queue) ({_sel(n.QUEUE_LENGTH.name, sel, QUEUES)})\n"
        f"  + max by (queue) ({_sel(n.QUEUE_UNACKED.name, sel, QUEUES)})\n"
        f"  + max by (queue) ({_sel(n.QUEUE_ACTIVE.name, sel, QUEUES)})"
    )
    eta = (
        _timeseries(
            "ETA to drain",
            "Waiting + in flight + active, at the completions of the last 5 minutes. "
            "Missing while nothing completes (a stalled batch has no ETA).",
            dm.GridPos(h=8, w=8, x=16, y=53),
        )
        .with_target(
            _query(
                f"(\n  {work}\n)\n/\n({per_queue(completions(FINISHED, '5m'))} > 0)",
                "{{queue}}",
            )
        )
        .unit("s")
        .no_value(NO_EVENTS)
    )
    return [throughput, failures, runtime, active, workers, eta]
