"""The `alerts:` section: thresholds, durations and selectors of the rendered rules."""

from __future__ import annotations

import re

from pydantic import Field, field_validator, model_validator

from batchctl.config.base import _MATCHERS, _PROM_STRING, _prom_duration, _Strict
from batchctl.metrics import ALL_SPECS
from batchctl.units import shown

# Grafana's rule for a dashboard uid.
_GRAFANA_UID = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*\Z")
# One matcher of a selector, its label name captured (the selector is valid by then).
_ONE_MATCHER = re.compile(
    rf"\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)\s*(?:{_PROM_STRING})\s*,?"
)
# Labels that batchctl's own series carry (queue, deployment, reason...). A selector
# that matches on one silences every rule on a series without it (CeleryBrokerDown's
# celery_broker_up has no queue label, so queue=~"batch.*" never matches it).
SERIES_LABELS = frozenset(label for spec in ALL_SPECS for label in spec.labels) | {"__name__"}


class AlertsConfig(_Strict):
    """Thresholds, durations and selectors for alerts/ and grafana/ (issue 4).

    Queue-depth tiers come from the top-level `thresholds`; everything else is here.
    """

    # Where an alert's runbook link goes; {alert} is the alert's name. The default is the
    # exporter's own copy (/runbooks/<Alert>), reached with `kubectl port-forward
    # svc/batchctl 9808`: set your own (an Ingress to the exporter, your wiki) when the
    # alerts go to people who cannot port-forward (docs/deploy.md).
    runbook_url: str = "http://localhost:9808/runbooks/{alert}"
    # Label matchers (PromQL, without braces) for the exporter's and the autoscaler's series.
    selector: str = 'job="batchctl"'
    autoscaler_selector: str = 'job="batchctl"'
    dashboard_uid: str = "batchctl-queues"
    # Labels that tell replicas of the exporter (and the sidecar) apart. Each replica
    # exports the same queues, so the rules on them aggregate these away: one alert per
    # queue, and a rollout does not restart a `for`. Exporters of different brokers must
    # then differ in another label (namespace, job); [] keeps one alert per target.
    replica_labels: tuple[str, ...] = ("instance", "pod")
    # `for` of the CeleryQueueLengthHigh tiers info, warning, critical. Higher tiers wait
    # less, so the critical alert reaches Alertmanager first and inhibits the lower ones.
    for_tier: tuple[str, str, str] = ("15m", "10m", "5m")
    no_consumers_for: str = "5m"
    idle_replicas_for: str = "30m"
    workers_not_ready_for: str = "10m"
    stuck_for: str = "15m"
    # Range over which "the queue grows" / "the oldest message keeps ageing" is judged.
    growth_window: str = "10m"
    queue_memory_share: float = Field(0.25, gt=0, le=1)
    broker_memory_warning: float = Field(0.8, gt=0, le=1)
    broker_memory_critical: float = Field(0.9, gt=0, le=1)
    memory_for: str = "5m"
    down_for: str = "2m"
    at_cap_for: str = "30m"
    held_for: str = "30m"
    claim_expired_for: str = "10m"
    unclaimed_for: str = "15m"
    # CeleryBatchBehindDeadline: a claim's deadline missed at the batch's pace this long
    # (ramping up to the pace takes a few step intervals).
    behind_deadline_for: str = "15m"
    # CeleryTaskFailureRatioHigh: failed / (succeeded + failed) of a queue's tasks over
    # `failure_window` above this share, with at least `failure_min_tasks` finished in
    # the window (so that one failure in three tasks does not page).
    failure_ratio: float = Field(0.05, gt=0, lt=1)
    failure_window: str = "10m"
    failure_min_tasks: int = Field(20, ge=1)
    failure_for: str = "5m"
    # CeleryBatchNoProgress: a claimed batch with work waiting and ready replicas whose
    # tasks have not completed for this long.
    no_progress_for: str = "15m"
    # Hysteresis on the way down: CeleryQueueLengthHigh warning keeps firing this long
    # after the depth drops below its threshold, critical twice as long, and
    # CeleryQueueNoConsumers critical this long after its condition ends. A tier thus
    # resolves in a later rule evaluation than the tiers it inhibits
    # (alerts/queue_rules.py explains the Alertmanager race this avoids). At least the
    # rule evaluation interval; twice it for the CeleryQueueNoConsumers guarantee.
    tier_resolve_hold: str = "1m"
    # CeleryUnackedStranded: in-flight messages past the visibility timeout with no live
    # worker, for longer than a worker's restore sweep (about 100 s).
    stranded_for: str = "10m"
    # Optional alerts (the Kubernetes ones are also left out when kubernetes.enabled is
    # false, the autoscaler and claim ones when autoscaler.enabled is false).
    idle_replicas_alert: bool = True
    workers_not_ready_alert: bool = True
    stuck_alert: bool = True
    queue_memory_alert: bool = True
    autoscaler_alerts: bool = True
    claim_alerts: bool = True
    # The alerts on task events (CeleryTaskFailureRatioHigh, CeleryBatchNoProgress): their
    # series exist only with events.enabled; without them they never fire.
    event_alerts: bool = True
    stranded_alert: bool = True

    @field_validator("runbook_url")
    @classmethod
    def _runbook(cls, v: str) -> str:
        if "{alert}" not in v:
            raise ValueError("must contain {alert}, where the alert name goes")
        return v

    @field_validator(
        "no_consumers_for", "idle_replicas_for", "workers_not_ready_for", "stuck_for",
        "growth_window", "memory_for", "down_for", "at_cap_for", "held_for",
        "claim_expired_for", "unclaimed_for", "behind_deadline_for", "failure_window",
        "failure_for", "no_progress_for", "tier_resolve_hold", "stranded_for",
    )  # fmt: skip
    @classmethod
    def _duration(cls, v: str) -> str:
        if not _prom_duration(v):
            raise ValueError(
                "expected a Prometheus duration such as 30s, 5m or 1h30m (units largest "
                f"first: y w d h m s ms), got {shown(v)}"
            )
        return v

    @field_validator("tier_resolve_hold")
    @classmethod
    def _hold(cls, v: str) -> str:
        # It becomes a range (`[1m]`, `[1m:]`), and PromQL rejects an empty one.
        if not any(c in "123456789" for c in v):
            raise ValueError(f"must be longer than 0, got {v!r}")
        return v

    @field_validator("for_tier")
    @classmethod
    def _tiers(cls, v: tuple[str, str, str]) -> tuple[str, str, str]:
        bad = [d for d in v if not _prom_duration(d)]
        if bad:
            raise ValueError(
                "expected three Prometheus durations such as 15m or 1h30m (units largest "
                f"first: y w d h m s ms), got {shown(bad[0])}"
            )
        return v

    @field_validator("selector", "autoscaler_selector")
    @classmethod
    def _selector(cls, v: str) -> str:
        if "{" in v or "}" in v:
            raise ValueError('write the matchers without braces, e.g. job="batchctl"')
        if not _MATCHERS.match(v):
            raise ValueError(
                "expected PromQL label matchers, comma-separated, each label=, !=, =~ or !~ "
                'a "double-quoted" value, e.g. job="batchctl" or job="batchctl",env!="dev"; '
                f"got {shown(v)}"
            )
        own = sorted({m[1] for m in _ONE_MATCHER.finditer(v)} & SERIES_LABELS)
        if own:
            raise ValueError(
                f"matches on {', '.join(own)}, a label of batchctl's own series: every rule "
                "on a series without it (CeleryBrokerDown, CeleryExporterDown, ...) would "
                "never fire. Select the scrape target here (job, namespace, instance); choose "
                "the queues that alert with batches[] and other_queues[]"
            )
        return v

    @field_validator("replica_labels")
    @classmethod
    def _replica_labels(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        bad = [x for x in v if not _LABEL_NAME.match(x)]
        if bad:
            raise ValueError(
                f"expected Prometheus label names, e.g. [instance, pod]; got {shown(bad[0])}"
            )
        if set(v) & {"queue", "deployment", "holder", "reason", "task"}:
            raise ValueError(
                "queue, deployment, holder, reason and task are what alerts are about, not replicas"
            )
        return v

    @field_validator("dashboard_uid")
    @classmethod
    def _uid(cls, v: str) -> str:
        if not _GRAFANA_UID.match(v):
            raise ValueError(
                "a Grafana dashboard uid is 1 to 40 letters, digits, '-' and '_', "
                f"e.g. batchctl-queues; got {shown(v)}"
            )
        return v

    @model_validator(mode="after")
    def _memory(self) -> AlertsConfig:
        if self.broker_memory_warning >= self.broker_memory_critical:
            raise ValueError(
                f"broker_memory_warning ({self.broker_memory_warning}) must be below "
                f"broker_memory_critical ({self.broker_memory_critical})"
            )
        return self
