"""Alert rules on the queues: depth tiers, no consumers, idle replicas, stuck queues, and
workers that do not become ready.

Tiers and inhibition. alerts/alertmanager.example.yml lets a higher tier of an alert
inhibit the lower ones for the same queue. On the way up the `for` durations order the
tiers (critical waits least, so it reaches Alertmanager first). On the way down the
tiers would all resolve in the same rule evaluation when a queue drains at once, and
that is not safe: inside Alertmanager the inhibitor and the dispatcher consume alert
updates independently, so the inhibitor can already see the critical tier resolved
while the dispatcher's warning group still holds the warning as firing; a group flush
in that window sends the warning as *firing*, although it was inhibited all along.
Rule order in the file does not prevent it: Prometheus sends the resolutions in file
order, but the two consumers run in goroutines of their own. The window is short, yet
flushes hit it more often than chance suggests: a group flushes every group_interval
after its first alert arrived, which was right after an evaluation, so when
group_interval is a multiple of the evaluation interval (as usual) its flushes fall
just when a later evaluation's notifications are being processed.

So the tiers have hysteresis on the way down, staggered by tier
(`alerts.tier_resolve_hold`, H): the warning tier looks at the highest depth of the
last H, the critical tier at the highest depth of the last 2H, and the
CeleryQueueNoConsumers critical tier stays firing for H after its condition ends. A
tier then resolves at least one rule evaluation after the tiers it inhibits (H must be
at least the evaluation interval; twice it for CeleryQueueNoConsumers), so Alertmanager
has the lower tier as resolved before the inhibiting tier goes away. Firing is
unchanged: the highest depth of a window that ends now is the current depth while the
queue rises. A dip shorter than the hold no longer resets a tier's `for`, and an
alert's value is the highest depth of its window. One case is left: a queue that
falls below the critical threshold, stays between warning and critical for about H
(within one evaluation interval) and then drops below warning resolves both tiers in
the same evaluation again.
"""

from __future__ import annotations

from alerts.common import (
    COUNT,
    DEPLOYMENT,
    QUEUE,
    Rule,
    alert,
    indent,
    one_per_site,
    queue_regex,
    scale_duration,
    series,
    with_deployment,
)
from batchctl import metrics as n
from batchctl.config import Config

QUEUE_LENGTH_HIGH = "CeleryQueueLengthHigh"
QUEUE_NO_CONSUMERS = "CeleryQueueNoConsumers"
IDLE_REPLICAS = "CeleryIdleReplicas"
QUEUE_STUCK = "CeleryQueueStuck"
WORKERS_NOT_READY = "CeleryWorkersNotReady"


def only(queues: tuple[str, ...]) -> str:
    """The matcher that keeps exactly these queues."""
    return f'queue=~"{queue_regex(list(queues))}"'


def queue_length_high(cfg: Config) -> list[Rule]:
    """Three tiers on the queue depth, from the operations page's rules of thumb, for
    the queues the site owns: the batches (each with its own tiers, or the top-level
    `thresholds`) and the other_queues it lists with theirs. A discovered queue the
    config does not name raises no depth alert: an application's ordinary queue that
    holds thousands all day is not a batch in danger. One set of rules per distinct
    tiers, each on exactly its queues.

    info is instant; warning uses the highest depth of the last H and critical that of
    the last 2H (H = `tier_resolve_hold`), so after a drop info resolves at once,
    warning H later and critical 2H later: each tier outlives the ones it inhibits.
    """
    return [rule for tiers, queues in cfg.tier_groups() for rule in _tiers(cfg, tiers, queues)]


def _tiers(cfg: Config, thresholds: tuple[int, int, int], queues: tuple[str, ...]) -> list[Rule]:
    a = cfg.alerts
    info, warning, critical = thresholds
    length = series(n.QUEUE_LENGTH.name, a.selector, only(queues))
    hold = a.tier_resolve_hold
    tiers = [
        (
            "info",
            f"{length} > {info}",
            a.for_tier[0],
            f"more than {info}",
            f"Under {info} is good and under {warning} fine: check that it is being "
            "consumed and drains.",
        ),
        (
            "warning",
            f"max_over_time({length}[{hold}]) > {warning}",
            a.for_tier[1],
            f"more than {warning}",
            f"It is heading for {critical}, where Redis memory is at risk: check the "
            "workers and slow the producer.",
        ),
        (
            "critical",
            f"max_over_time({length}[{scale_duration(hold, 2)}]) >= {critical}",
            a.for_tier[2],
            f"{critical} or more",
            "A backlog this size can fill Redis memory and take the site down: act now.",
        ),
    ]
    return [
        alert(
            QUEUE_LENGTH_HIGH,
            one_per_site(expr, a.replica_labels),
            for_,
            severity,
            f"Celery queue {QUEUE} has {limit} messages waiting.",
            f"Queue {QUEUE} has {COUNT} messages waiting ({limit}) for {for_}. {advice}",
        )
        for severity, expr, for_, limit, advice in tiers
    ]


def queue_no_consumers(cfg: Config) -> list[Rule]:
    """Messages waiting for a Deployment with no ready replica: the "crash the site" case."""
    a = cfg.alerts
    length = series(n.QUEUE_LENGTH.name, a.selector)
    no_ready = f"{series(n.DEPLOYMENT_READY.name, a.selector)} == 0"
    summary = f"Nobody consumes Celery queue {QUEUE}."
    base = (
        f"{COUNT} messages wait in queue {QUEUE} while Deployment {DEPLOYMENT} has had "
        f"0 ready replicas for {a.no_consumers_for}."
    )
    # The warning: any queue whose Deployment the exporter watches (the batches, the
    # other_queues that name one); the critical tier at each queue's own critical depth.
    warning = alert(
        QUEUE_NO_CONSUMERS,
        one_per_site(with_deployment(f"{length} > 0", no_ready), a.replica_labels),
        a.no_consumers_for,
        "warning",
        summary,
        f"{base} They pile up in Redis until a worker runs: claim the batch and scale "
        "it up, or stop the producer.",
    )
    watched = set(cfg.watched_deployments())
    criticals = [
        _no_consumers_critical(cfg, tiers[2], qs, summary, base)
        for tiers, queues in cfg.tier_groups()
        if (qs := tuple(q for q in queues if q in watched))
    ]
    return [warning, *criticals]


def _no_consumers_critical(
    cfg: Config, critical: int, queues: tuple[str, ...], summary: str, base: str
) -> Rule:
    a = cfg.alerts
    length = series(n.QUEUE_LENGTH.name, a.selector, only(queues))
    no_ready = f"{series(n.DEPLOYMENT_READY.name, a.selector)} == 0"
    grows = f"{length} > 0 and delta({length}[{a.growth_window}]) > 0"
    critical_now = with_deployment(f"{length} >= {critical}\nor\n({grows})", no_ready)
    # The critical tier inhibits the warning tier, so it must resolve later (see the
    # module docstring). `now or max_over_time((now)[H:])`: the instant condition fires
    # exactly as before; the subquery (the condition at each evaluation step of the
    # last H) keeps it firing for H after the condition last held, whether the queue
    # drained or a replica became ready. Only a subquery can hold the whole condition,
    # the growth test and the Deployment match included; its labels are the
    # condition's (queue, deployment).
    critical_held = (
        f"(\n  {indent(critical_now)}\n)\n"
        f"or\n"
        f"max_over_time(\n  (\n    {indent(critical_now, '    ')}\n  )[{a.tier_resolve_hold}:]\n)"
    )
    return alert(
        QUEUE_NO_CONSUMERS,
        one_per_site(critical_held, a.replica_labels),
        a.no_consumers_for,
        "critical",
        summary,
        f"{base} The queue is at {critical} or more, or still growing: Redis memory is "
        "at risk. Scale the Deployment up or stop the producer now.",
    )


def idle_replicas(cfg: Config) -> list[Rule]:
    """Workers running with nothing waiting and nothing in flight: money and CO2."""
    a = cfg.alerts
    if not cfg.batches:
        return []
    # Batches only: an ordinary queue's workers (other_queues) are meant to wait idle.
    batches = only(tuple(b.queue for b in cfg.batches))
    work = f"{series(n.QUEUE_LENGTH.name, a.selector)} + {series(n.QUEUE_UNACKED.name, a.selector)}"
    return [
        alert(
            IDLE_REPLICAS,
            one_per_site(
                f"{series(n.DEPLOYMENT_REPLICAS.name, a.selector, batches)} > 0\n"
                f"and ignoring (deployment)\n  ({work} == 0)",
                a.replica_labels,
            ),
            a.idle_replicas_for,
            "warning",
            f"Deployment {DEPLOYMENT} runs idle workers.",
            f"Deployment {DEPLOYMENT} has {COUNT} replicas, but queue {QUEUE} has had no "
            f"waiting and no in-flight messages for {a.idle_replicas_for}. Idle workers "
            "cost money and CO2: scale it to 0 and release the claim.",
        )
    ]


def queue_stuck(cfg: Config) -> list[Rule]:
    """Ready consumers, yet the oldest message keeps ageing: nobody takes messages."""
    a = cfg.alerts
    age = series(n.QUEUE_OLDEST_AGE.name, a.selector)
    # An untouched tail ages one second per second; a queue that is being consumed
    # oldest-first keeps a steady age. Half a second per second separates the two.
    ageing = f"{age} > 0\nand deriv({age}[{a.growth_window}]) > 0.5"
    return [
        alert(
            QUEUE_STUCK,
            one_per_site(
                with_deployment(ageing, f"{series(n.DEPLOYMENT_READY.name, a.selector)} > 0"),
                a.replica_labels,
            ),
            a.stuck_for,
            "warning",
            f"Celery queue {QUEUE} is not being consumed.",
            f"The oldest message in queue {QUEUE} is {{{{ $value | humanizeDuration }}}} "
            f"old and has kept ageing for {a.stuck_for} although Deployment {DEPLOYMENT} "
            "has ready replicas: its workers do not take messages (wrong queue, hung, or "
            "busy with long tasks).",
        )
    ]


def workers_not_ready(cfg: Config) -> list[Rule]:
    """Replicas asked for that do not become ready while there is work: pods Pending for
    lack of room, crash-looping, or failing their probes. The autoscaler holds such a
    batch (replicas_not_ready) instead of adding more of them."""
    a = cfg.alerts
    missing = (
        f"{series(n.DEPLOYMENT_REPLICAS.name, a.selector)}\n"
        f"  - {series(n.DEPLOYMENT_READY.name, a.selector)} > 0"
    )
    work = f"{series(n.QUEUE_LENGTH.name, a.selector)} + {series(n.QUEUE_UNACKED.name, a.selector)}"
    return [
        alert(
            WORKERS_NOT_READY,
            one_per_site(
                f"({missing})\nand ignoring (deployment)\n  ({work} > 0)", a.replica_labels
            ),
            a.workers_not_ready_for,
            "warning",
            f"Deployment {DEPLOYMENT} has replicas that do not become ready.",
            f"{COUNT} of the replicas Deployment {DEPLOYMENT} asks for have not been ready "
            f"for {a.workers_not_ready_for} while queue {QUEUE} has work: pods Pending (no "
            "room in the cluster, a quota), crash-looping, or failing their probes. The "
            "autoscaler holds the batch instead of adding more.",
        )
    ]
