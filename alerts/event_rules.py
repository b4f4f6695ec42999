"""Alert rules on Celery's task events (issue 12): failing tasks, batches that do not move.

They read `celery_task_events_total`, which the exporter publishes with `events.enabled`
and workers sending task events (`-E`). Without it the series are missing and neither
rule fires: a missing signal is not a failure (CeleryExporterDown and celery_events_up
say whether the exporter and its consumer run).
"""

from __future__ import annotations

from alerts.common import COUNT, QUEUE, Rule, alert, indent, one_per_site, series
from batchctl import metrics as n
from batchctl.config import Config

TASK_FAILURE_RATIO_HIGH = "CeleryTaskFailureRatioHigh"
BATCH_NO_PROGRESS = "CeleryBatchNoProgress"

FINISHED = 'state=~"succeeded|failed"'
FAILED = 'state="failed"'
# CeleryBatchNoProgress: completions are counted over this window at each evaluation,
# and the alert waits `alerts.no_progress_for` with none.
COMPLETION_WINDOW = "5m"


def task_failure_ratio_high(cfg: Config) -> list[Rule]:
    """failed / (succeeded + failed) of a queue's tasks over the window, above the share,
    with a minimum number of finished tasks (one failure in three tasks does not page).
    Each exporter counts the events it received itself; replicas receive the same
    events, so the ratio is taken per exporter and the alert once per queue."""
    a = cfg.alerts
    events = n.TASK_EVENTS.name
    w = a.failure_window

    def finished(which: str) -> str:
        return (
            f"sum without (task, state) (\n  increase({series(events, a.selector, which)}[{w}])\n)"
        )

    ratio = f"(\n  {indent(finished(FAILED))}\n/\n  {indent(finished(FINISHED))}\n)"
    expr = f"{ratio} > {a.failure_ratio:g}\nand\n{finished(FINISHED)} >= {a.failure_min_tasks}"
    return [
        alert(
            TASK_FAILURE_RATIO_HIGH,
            one_per_site(expr, a.replica_labels),
            a.failure_for,
            "warning",
            f"Tasks of queue {QUEUE} fail often.",
            f"{{{{ $value | humanizePercentage }}}} of the tasks of queue {QUEUE} that "
            f"finished in the last {w} failed (more than {a.failure_ratio:.0%}, over at least "
            f"{a.failure_min_tasks} tasks). Look at the failures before the batch burns "
            "through its work: a bad deploy, a dependency down, bad input.",
        )
    ]


def batch_no_progress(cfg: Config) -> list[Rule]:
    """A claimed batch with work waiting and ready replicas, none of whose tasks completed
    (succeeded or failed) in the last COMPLETION_WINDOW, while the events consumer was
    up, for `no_progress_for`. A queue without any task event series is left out: its
    workers do not send task events, and nothing is known."""
    a = cfg.alerts
    length = series(n.QUEUE_LENGTH.name, a.selector)
    ready = series(n.DEPLOYMENT_READY.name, a.selector)
    claimed = series(n.BATCH_CLAIMED.name, a.selector)
    events = series(n.TASK_EVENTS.name, a.selector)
    done = series(n.TASK_EVENTS.name, a.selector, FINISHED)
    up = series(n.EVENTS_UP.name, a.selector)
    # No finished-task series yet but other task events: 0 completions, not unknown.
    completions = (
        f"sum by (queue) (increase({done}[{COMPLETION_WINDOW}]))\n"
        f"or on (queue)\n"
        f"0 * max by (queue) ({events})"
    )
    expr = (
        f"max by (queue) ({length}) > 0\n"
        f"and on (queue)\n  max by (queue) ({ready}) > 0\n"
        f"and on (queue)\n  max by (queue) ({claimed}) == 1\n"
        f"and on (queue)\n  (\n    {indent(completions, '    ')}\n  ) == 0\n"
        f"and on ()\n  max({up}) == 1"
    )
    return [
        alert(
            BATCH_NO_PROGRESS,
            expr,
            a.no_progress_for,
            "warning",
            f"Batch {QUEUE} makes no progress.",
            f"Batch {QUEUE} is claimed and has had messages waiting ({COUNT} now) and ready "
            f"replicas for {a.no_progress_for}, and not one of its tasks completed in that "
            "time: the workers are hung, busy with very long tasks, or not consuming this "
            "queue.",
        )
    ]
