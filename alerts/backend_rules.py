"""Alert rules on what the exporter reads and how it is read.

Broker memory (per queue and in all) and health, RabbitMQ's resource alarms, the
Kubernetes API, and the exporter's own scrape target. The broker is named as the config
says (Redis or RabbitMQ); the expressions are the same for both.
"""

from __future__ import annotations

from alerts.common import INSTANCE, QUEUE, Rule, alert, one_per_site, series
from batchctl import metrics as n
from batchctl.config import Config

QUEUE_MEMORY_HIGH = "CeleryQueueMemoryHigh"
BROKER_MEMORY_HIGH = "CeleryBrokerMemoryHigh"
BROKER_DOWN = "CeleryBrokerDown"
BROKER_RESOURCE_ALARM = "CeleryBrokerResourceAlarm"
KUBERNETES_API_DOWN = "CeleryKubernetesApiDown"
EXPORTER_DOWN = "CeleryExporterDown"


def _named(cfg: Config) -> tuple[str, str]:
    """The broker as the texts name it, and what its memory limit is called."""
    if cfg.broker.kind == "rabbitmq":
        return "RabbitMQ", "memory high watermark"
    return "Redis", "maxmemory"


def queue_memory_high(cfg: Config) -> list[Rule]:
    """One queue holds a large share of the broker's memory limit (big task arguments)."""
    a = cfg.alerts
    name, limit_name = _named(cfg)
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
            f"Celery queue {QUEUE} holds a large share of {name} memory.",
            f"Queue {QUEUE} holds {{{{ $value | humanizePercentage }}}} of the broker's "
            f"{limit_name} (more than {a.queue_memory_share:.0%}) for {a.memory_for}: large "
            "task arguments or a large backlog. Pass IDs instead of objects and slow the "
            "producer.",
        )
    ]


def broker_memory_high(cfg: Config) -> list[Rule]:
    """Used memory against the limit (Redis maxmemory, RabbitMQ's high watermark);
    silent when no limit is set."""
    a = cfg.alerts
    name, limit_name = _named(cfg)
    full = (
        "Redis refuses writes or evicts keys and producers fail"
        if name == "Redis"
        else "RabbitMQ raises its memory alarm and blocks every publisher"
    )
    used = series(n.BROKER_MEMORY_USED.name, a.selector)
    limit = f"({series(n.BROKER_MEMORY_MAX.name, a.selector)} > 0)"
    return [
        alert(
            BROKER_MEMORY_HIGH,
            one_per_site(f"{used}\n/ {limit}\n> {share:g}", a.replica_labels),
            a.memory_for,
            severity,
            f"The Celery broker ({name}) uses more than {share:.0%} of its {limit_name}.",
            f"{name} uses {{{{ $value | humanizePercentage }}}} of its "
            f"{limit_name} (more than {share:.0%}) for {a.memory_for}. When it is full, "
            f"{full}: find the queue that grows and drain it.",
        )
        for severity, share in (
            ("warning", a.broker_memory_warning),
            ("critical", a.broker_memory_critical),
        )
    ]


def broker_resource_alarm(cfg: Config) -> list[Rule]:
    """RabbitMQ's memory or disk alarm: every publisher of the cluster is blocked while
    it is raised. Silent on Redis, which exports no such series."""
    a = cfg.alerts
    return [
        alert(
            BROKER_RESOURCE_ALARM,
            one_per_site(f"{series(n.BROKER_ALARM.name, a.selector)} == 1", a.replica_labels),
            a.down_for,
            "critical",
            "The Celery broker blocks every publisher: its {{ $labels.resource }} alarm is raised.",
            "RabbitMQ's {{ $labels.resource }} resource alarm has been raised for "
            f"{a.down_for}: every connection that publishes is blocked, so producers hang "
            "and no task can be enqueued (workers still consume and acknowledge). Memory: "
            "a node is past its memory high watermark; disk: free disk is under "
            "disk_free_limit. Find the queue that grows and let its workers drain it.",
        )
    ]


def broker_down(cfg: Config) -> list[Rule]:
    a = cfg.alerts
    name = _named(cfg)[0]
    return [
        alert(
            BROKER_DOWN,
            f"{series(n.BROKER_UP.name, a.selector)} == 0",
            a.down_for,
            "critical",
            f"The exporter cannot read the Celery broker ({name}).",
            f"The exporter {INSTANCE} has failed to read {name} for {a.down_for}. Queue "
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
