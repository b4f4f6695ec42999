"""Alert rules on what the exporter reads and how it is read.

Redis memory (per queue and in all) and health, the Kubernetes API, and the exporter's
own scrape target.
"""

from __future__ import annotations

from alerts.common import INSTANCE, QUEUE, Rule, alert, one_per_site, series
from batchctl import metrics as n
from batchctl.config import Config

QUEUE_MEMORY_HIGH = "CeleryQueueMemoryHigh"
BROKER_MEMORY_HIGH = "CeleryBrokerMemoryHigh"
BROKER_DOWN = "CeleryBrokerDown"
KUBERNETES_API_DOWN = "CeleryKubernetesApiDown"
EXPORTER_DOWN = "CeleryExporterDown"


def queue_memory_high(cfg: Config) -> list[Rule]:
    """One queue holds a large share of Redis maxmemory (big task arguments)."""
    a = cfg.alerts
    # `> 0` drops a broker without maxmemory: no limit means no share to speak of.
    limit = f"{series(n.BROKER_MEMORY_MAX.name, a.selector)} > 0"
    return [
        alert(
            QUEUE_MEMORY_HIGH,
            one_per_site(
                f"{series(n.QUEUE_MEMORY.name, a.selector)}\n"
                # `group_left ()`: a bare `group_left (` would read the divisor as labels.
                f"/ ignoring (queue) group_left ()\n  ({limit})\n"
                f"> {a.queue_memory_share:g}",
                a.replica_labels,
            ),
            a.memory_for,
            "warning",
            f"Celery queue {QUEUE} holds a large share of Redis memory.",
            f"Queue {QUEUE} holds {{{{ $value | humanizePercentage }}}} of the broker's "
            f"maxmemory (more than {a.queue_memory_share:.0%}) for {a.memory_for}: large "
            "task arguments or a large backlog. Pass IDs instead of objects and slow the "
            "producer.",
        )
    ]


def broker_memory_high(cfg: Config) -> list[Rule]:
    """Redis used memory against maxmemory; silent when no maxmemory is set."""
    a = cfg.alerts
    used = series(n.BROKER_MEMORY_USED.name, a.selector)
    limit = f"({series(n.BROKER_MEMORY_MAX.name, a.selector)} > 0)"
    return [
        alert(
            BROKER_MEMORY_HIGH,
            one_per_site(f"{used}\n/ {limit}\n> {share:g}", a.replica_labels),
            a.memory_for,
            severity,
            f"The Celery broker (Redis) uses more than {share:.0%} of its maxmemory.",
            f"Redis uses {{{{ $value | humanizePercentage }}}} of its "
            f"maxmemory (more than {share:.0%}) for {a.memory_for}. When it is full, "
            "Redis refuses writes or evicts keys and producers fail: find the queue that "
            "grows and drain it.",
        )
        for severity, share in (
            ("warning", a.broker_memory_warning),
            ("critical", a.broker_memory_critical),
        )
    ]


def broker_down(cfg: Config) -> list[Rule]:
    a = cfg.alerts
    return [
        alert(
            BROKER_DOWN,
            f"{series(n.BROKER_UP.name, a.selector)} == 0",
            a.down_for,
            "critical",
            "The exporter cannot read the Celery broker (Redis).",
            f"The exporter {INSTANCE} has failed to read Redis for {a.down_for}. Queue "
            "metrics are missing, so queue alerts cannot fire; producers and workers "
            "probably fail as well.",
        )
    ]


def kubernetes_api_down(cfg: Config) -> list[Rule]:
    a = cfg.alerts
    return [
        alert(
            KUBERNETES_API_DOWN,
            f"{series(n.KUBERNETES_UP.name, a.selector)} == 0",
            a.down_for,
            "warning",
            "The exporter cannot read Deployments from the Kubernetes API.",
            f"The exporter {INSTANCE} has not been in sync with the Kubernetes API for "
            f"{a.down_for}. Replica metrics are stale or missing, so the no-consumer and "
            "idle-replica alerts cannot fire.",
        )
    ]


def exporter_down(cfg: Config) -> list[Rule]:
    """No exporter serves: a target that is down while no other exporter of its job and
    namespace answers (the manifests run two replicas: one down is redundancy lost,
    which a generic TargetDown alert reports, not a blind spot), or no target at all.
    `celery_broker_up` is in every answer of an exporter, whatever the broker does; the
    match is on (job, namespace) so that one site's exporters never hide another's
    outage (a label absent on both sides matches)."""
    a = cfg.alerts
    up = series(n.UP, a.selector)
    serving = series(n.BROKER_UP.name, a.selector)
    return [
        alert(
            EXPORTER_DOWN,
            f"{up} == 0 unless on (job, namespace) {serving}\nor\nabsent({up})",
            a.down_for,
            "critical",
            "Prometheus cannot scrape the batchctl exporter.",
            f"{{{{ with $labels.instance }}}}Target {{{{ . }}}} is down{{{{ else }}}}No target "
            f"matches {{{a.selector}}}{{{{ end }}}} for {a.down_for}. Without the exporter "
            "no queue, broker or replica alert can fire.",
        )
    ]
