"""The configuration schema shared by the exporter, alerts, dashboard and autoscaler.

Every key, its default and its check; `batchctl.config.load` turns a file into a
`Config` and problems into one line each. docs/configuration.md documents every key
(tests/batchctl/test_docs.py keeps it complete).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from batchctl.brokerparse import BrokerURLError, parse_broker_url
from batchctl.config.claims import ClaimsConfig

DEFAULT_PRIORITY_STEPS = (0, 3, 6, 9)
_QUEUE_NAME = re.compile(r"^[A-Za-z0-9_.:@-]{1,200}$")
# RFC 1123 label, which is what Kubernetes requires of a Deployment name.
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
# RFC 1123 subdomain: most other object names (a Lease's).
_DNS_SUBDOMAIN = re.compile(
    r"^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


# kombu's default separator between a queue name and its priority step, and in the
# members of its binding sets (kombu.transport.redis.Channel.sep).
DEFAULT_SEP = "\x06\x16"
# Keys of Celery's `sentinel_kwargs` transport option that batchctl passes on: the
# connection arguments redis-py takes for the sentinels themselves.
SENTINEL_KWARGS = (
    "password", "username", "socket_timeout", "socket_connect_timeout", "ssl",
    "ssl_cert_reqs", "ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_check_hostname",
    "client_name",
)  # fmt: skip


class BrokerConfig(_Strict):
    url: str = "redis://localhost:6379/0"
    # kombu's transport options, under kombu's names (Celery's broker_transport_options).
    global_keyprefix: str = ""
    sep: str = DEFAULT_SEP
    priority_steps: tuple[int, ...] = DEFAULT_PRIORITY_STEPS
    # With sentinel:// URLs: the monitored master, and the sentinels' own connection
    # arguments (e.g. their password), as in Celery's transport options.
    master_name: str = "mymaster"
    sentinel_kwargs: dict[str, str | int | float | bool] | None = None
    discover_queues: bool = True
    discovery_interval_seconds: float = Field(30.0, gt=0)
    max_queues: int = Field(2000, ge=1)
    timeout_seconds: float = Field(1.0, gt=0, le=60)
    memory_sample_interval_seconds: float = Field(30.0, ge=0)

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        # The same reading the connection uses: Celery's meaning, kombu's parser.
        try:
            parse_broker_url(v)
        except BrokerURLError as e:
            raise ValueError(str(e).removeprefix("URL: ")) from None
        return v

    @field_validator("sep")
    @classmethod
    def _sep(cls, v: str) -> str:
        if not v:
            raise ValueError('must not be empty (kombu\'s default is "\\x06\\x16")')
        return v

    @field_validator("master_name")
    @classmethod
    def _master(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must name the master the sentinels monitor, e.g. mymaster")
        return v

    @field_validator("sentinel_kwargs", mode="before")
    @classmethod
    def _sentinel_kwargs(cls, v: object) -> object:
        # Checked by hand so that no value (a password) is ever echoed in a problem.
        if v is None:
            return v
        if not isinstance(v, dict):
            raise ValueError(
                f"expected a mapping such as {{password: ...}}, got {type(v).__name__}"
            )
        for key, value in v.items():
            if key not in SENTINEL_KWARGS:
                known = ", ".join(SENTINEL_KWARGS)
                raise ValueError(f"unknown key {str(key)[:40]!r}; known: {known}")
            if not isinstance(value, str | int | float | bool):
                raise ValueError(f"{key}: expected a string, number or boolean")
        return v

    @field_validator("priority_steps")
    @classmethod
    def _steps(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if not v:
            raise ValueError("needs at least one step, e.g. [0, 3, 6, 9]")
        if list(v) != sorted(set(v)):
            raise ValueError("steps must be unique and ascending, e.g. [0, 3, 6, 9]")
        if v[0] != 0 or v[-1] > 255:
            raise ValueError(
                "steps must start at 0 and stay within 0..255 (kombu's default: [0, 3, 6, 9])"
            )
        return v


# Where Kubernetes mounts the pod's service account (its namespace, token and CA).
SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


def pod_namespace(sa_dir: Path = SERVICE_ACCOUNT_DIR) -> str:
    """The pod's own namespace in-cluster (the service account's `namespace` file),
    else `default`, as kubectl and client-go default it."""
    try:
        text = (sa_dir / "namespace").read_text().strip()
    except OSError:
        return "default"
    return text or "default"


class KubernetesConfig(_Strict):
    enabled: bool = True
    namespace: str = Field(default_factory=pod_namespace)
    kubeconfig: str | None = None
    context: str | None = None
    # Watches are restarted at least this often; the server may end them sooner.
    watch_timeout_seconds: int = Field(300, ge=1)
    request_timeout_seconds: float = Field(5.0, gt=0)

    @field_validator("namespace")
    @classmethod
    def _ns(cls, v: str) -> str:
        if not _DNS_LABEL.match(v):
            raise ValueError("must be a Kubernetes namespace name (lower case, digits, '-')")
        return v


class BatchConfig(_Strict):
    queue: str
    deployment: str
    min_replicas: int = Field(0, ge=0)
    max_replicas: int = Field(5, ge=0)
    allow_big: bool = False
    allow_over_20: bool = False
    step_up: int = Field(1, ge=1)
    step_interval_seconds: float = Field(60.0, gt=0)
    target_drain_seconds: float = Field(600.0, gt=0)
    idle_after_seconds: float = Field(120.0, ge=0)
    require_claim: bool = True
    manual_override_seconds: float = Field(900.0, ge=0)
    # Pods of a step up have this long to become ready; until then the next step waits
    # (replicas_starting), after it the batch holds (replicas_not_ready).
    startup_grace_seconds: float = Field(300.0, gt=0)
    # The longest task this batch runs: manifests use it for the grace period.
    max_task_seconds: float = Field(300.0, gt=0)
    # The workers' --concurrency and worker_prefetch_multiplier. One replica holds at
    # most their product in `unacked`: the autoscaler never shrinks below
    # ceil(in_flight / (concurrency * prefetch)).
    worker_concurrency: int = Field(4, ge=1)
    prefetch_multiplier: int = Field(4, ge=1)
    # false: decide and report (a hold with reason observe_only, a log line), never act;
    # a site turns autoscaling on one batch at a time.
    autoscale: bool = True

    @field_validator("queue")
    @classmethod
    def _queue(cls, v: str) -> str:
        if not _QUEUE_NAME.match(v):
            raise ValueError("must be 1-200 characters of letters, digits and _ . : @ -")
        return v

    @field_validator("deployment")
    @classmethod
    def _deployment(cls, v: str) -> str:
        if not _DNS_LABEL.match(v):
            raise ValueError(
                "must be a Kubernetes Deployment name (lower case, digits, '-'), e.g. celery-batch0"
            )
        return v

    @model_validator(mode="after")
    def _caps(self) -> BatchConfig:
        if self.min_replicas > self.max_replicas:
            raise ValueError(
                f"min_replicas ({self.min_replicas}) is above max_replicas ({self.max_replicas})"
            )
        if self.max_replicas > 20 and not self.allow_over_20:
            raise ValueError(
                f"max_replicas {self.max_replicas} is over 20: set allow_over_20: true "
                "if you really mean it (more than 20 workers overloads the DB and Elasticsearch)"
            )
        if self.max_replicas > 10 and not self.allow_big:
            raise ValueError(
                f"max_replicas {self.max_replicas} is over 10: set allow_big: true "
                "to enter the 'big' band, or lower max_replicas"
            )
        return self


class GuardConfig(_Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    # Any sample returned means "unhealthy": write the query as a condition.
    query: str = Field(min_length=1)
    shed: bool = False


class LeaderElectionConfig(_Strict):
    """One acting autoscaler among replicas, on a coordination.k8s.io/v1 Lease.

    A leader that cannot renew stops writing after `renew_deadline_seconds`; another
    replica takes over only `lease_duration_seconds` after it last saw the Lease change.
    The difference must cover a request in flight (kubernetes.request_timeout_seconds).
    """

    # None: on with the kubernetes backend, off otherwise.
    enabled: bool | None = None
    lease_name: str = "batchctl-autoscaler"
    lease_duration_seconds: int = Field(15, ge=1)  # a Lease holds whole seconds
    renew_deadline_seconds: float = Field(10.0, ge=1)
    retry_period_seconds: float = Field(2.0, ge=1)
    # Who we are in the Lease: default $POD_NAME, else host name and process id.
    identity: str | None = None

    @field_validator("lease_name")
    @classmethod
    def _lease_name(cls, v: str) -> str:
        if not _DNS_SUBDOMAIN.match(v):
            raise ValueError("must be a Kubernetes object name (lower case, digits, '-', '.')")
        return v

    @model_validator(mode="after")
    def _timing(self) -> LeaderElectionConfig:
        # The same rules kubernetes.leaderelection.electionconfig enforces with sys.exit.
        if self.lease_duration_seconds <= self.renew_deadline_seconds:
            raise ValueError(
                f"lease_duration_seconds ({self.lease_duration_seconds:g}) must be above "
                f"renew_deadline_seconds ({self.renew_deadline_seconds:g})"
            )
        if self.renew_deadline_seconds <= 1.2 * self.retry_period_seconds:
            raise ValueError(
                f"renew_deadline_seconds ({self.renew_deadline_seconds:g}) must be above "
                f"1.2 x retry_period_seconds ({self.retry_period_seconds:g})"
            )
        return self


class AutoscalerConfig(_Strict):
    enabled: bool = True
    backend: Literal["kubernetes", "local", "dry-run"] = "kubernetes"
    interval_seconds: float = Field(15.0, gt=0)
    global_max_replicas: int = Field(20, ge=0)
    prometheus_url: str | None = None
    guards: tuple[GuardConfig, ...] = ()
    guard_timeout_seconds: float = Field(2.0, gt=0)
    # A snapshot older than this counts as missing data: hold. None: two ticks.
    stale_after_seconds: float | None = Field(None, gt=0)
    # Where the snapshot comes from: the exporter beside us (one observer per pod), or
    # None to read Redis and the Deployments in this process. The local backend always
    # reads in process.
    snapshot_url: str | None = "http://127.0.0.1:9808"
    # --once: how long to wait for a first snapshot (and Deployment list).
    startup_timeout_seconds: float = Field(30.0, gt=0)
    leader_election: LeaderElectionConfig = LeaderElectionConfig()
    # The local backend: the Celery app (`celery -A` argument) and concurrency of its
    # worker processes. Required with backend: local.
    local_app: str | None = None
    local_concurrency: int = Field(2, ge=1)

    @field_validator("snapshot_url")
    @classmethod
    def _snapshot_url(cls, v: str | None) -> str | None:
        if v is not None and urlsplit(v).scheme not in ("http", "https"):
            raise ValueError("expected an http:// or https:// URL, e.g. http://127.0.0.1:9808")
        return v

    @property
    def stale_limit_seconds(self) -> float:
        """How old a snapshot may be before it counts as missing: two ticks by default."""
        return self.stale_after_seconds or 2 * self.interval_seconds

    def leader_election_on(self) -> bool:
        le = self.leader_election.enabled
        return self.backend == "kubernetes" if le is None else le

    @model_validator(mode="after")
    def _local(self) -> AutoscalerConfig:
        if self.backend == "local" and not self.local_app:
            raise ValueError(
                "local_app is required with backend local: the Celery app the "
                "worker processes run (the `celery -A` argument, e.g. myproject.celery)"
            )
        return self


class ExporterConfig(_Strict):
    listen: str = "0.0.0.0:9808"
    # The status page reloads itself this often.
    status_refresh_seconds: int = Field(5, ge=1)
    # Collect in the background when no scrape has for this long: ready at start, and a
    # fresh snapshot (and oldest-message ages) without depending on the scrape interval.
    refresh_interval_seconds: float = Field(15.0, gt=0)
    # A scrape that arrives within this long after a collection finished is answered
    # from it (and its rendered body): a burst of scrapers costs one collection.
    snapshot_reuse_seconds: float = Field(0.5, ge=0, le=10)
    # The autoscaler sidecar beside us: the status page shows its decisions (its
    # /api/v1/decisions). None: the page says "autoscaler: not asked".
    autoscaler_url: str | None = "http://127.0.0.1:9809"
    autoscaler_timeout_seconds: float = Field(0.5, gt=0, le=10)

    @field_validator("autoscaler_url")
    @classmethod
    def _autoscaler_url(cls, v: str | None) -> str | None:
        if v is not None and urlsplit(v).scheme not in ("http", "https"):
            raise ValueError("expected an http:// or https:// URL, e.g. http://127.0.0.1:9809")
        return v

    @field_validator("listen")
    @classmethod
    def _listen(cls, v: str) -> str:
        _host, sep, port = v.rpartition(":")
        if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError("expected HOST:PORT, e.g. 0.0.0.0:9808")
        return v


# A Prometheus duration such as 30s, 5m, 1h30m (what a rule's `for` and a range accept).
_PROM_DURATION = re.compile(r"^([0-9]+(ms|s|m|h|d|w|y))+$")


class AlertsConfig(_Strict):
    """Thresholds, durations and selectors for alerts/ and grafana/ (issue 4).

    Queue-depth tiers come from the top-level `thresholds`; everything else is here.
    """

    runbook_url: str = "https://github.com/batchctl/batchctl/blob/main/docs/runbooks/{alert}.md"
    # Label matchers (PromQL, without braces) for the exporter's and the autoscaler's series.
    selector: str = 'job="batchctl"'
    autoscaler_selector: str = 'job="batchctl"'
    dashboard_uid: str = "batchctl-queues"
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

    @field_validator("runbook_url")
    @classmethod
    def _runbook(cls, v: str) -> str:
        if "{alert}" not in v:
            raise ValueError("must contain {alert}, where the alert name goes")
        return v

    @field_validator(
        "no_consumers_for", "idle_replicas_for", "workers_not_ready_for", "stuck_for",
        "growth_window", "memory_for", "down_for", "at_cap_for", "held_for",
        "claim_expired_for", "unclaimed_for", "failure_window", "failure_for",
        "no_progress_for", "tier_resolve_hold",
    )  # fmt: skip
    @classmethod
    def _duration(cls, v: str) -> str:
        if not _PROM_DURATION.match(v):
            raise ValueError(f"expected a Prometheus duration such as 30s, 5m or 1h, got {v!r}")
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
        bad = [d for d in v if not _PROM_DURATION.match(d)]
        if bad:
            raise ValueError(f"expected three Prometheus durations such as 15m, got {bad!r}")
        return v

    @field_validator("selector", "autoscaler_selector")
    @classmethod
    def _selector(cls, v: str) -> str:
        if "{" in v or "}" in v:
            raise ValueError('write the matchers without braces, e.g. job="batchctl"')
        return v

    @model_validator(mode="after")
    def _memory(self) -> AlertsConfig:
        if self.broker_memory_warning >= self.broker_memory_critical:
            raise ValueError(
                f"broker_memory_warning ({self.broker_memory_warning}) must be below "
                f"broker_memory_critical ({self.broker_memory_critical})"
            )
        return self


class EventsConfig(_Strict):
    """Celery's task and worker events, consumed by the exporter (issue 12).

    Off by default: workers must send task events (`-E` or worker_send_task_events)
    for anything but heartbeats to arrive, and every event costs a little broker
    traffic (docs/operations.md, "Celery events").
    """

    enabled: bool = False
    # Distinct task names labelled per queue; later names are counted as task="other".
    max_task_names: int = Field(50, ge=1, le=10_000)
    # Queues other than the configured batches that get series of their own; events of
    # further queues are counted as queue="other".
    max_queues: int = Field(10, ge=0, le=10_000)
    # Tasks remembered between their events (uuid -> queue, name), least recently seen
    # forgotten first: bounds memory however long the exporter runs.
    max_tracked_tasks: int = Field(10_000, ge=100, le=10_000_000)
    # Reconnecting after the broker went away: waits double from 1 s up to this.
    reconnect_max_seconds: float = Field(30.0, ge=1, le=3600)


def _default_batches() -> tuple[BatchConfig, ...]:
    return tuple(BatchConfig(queue=f"batch{i}", deployment=f"celery-batch{i}") for i in range(4))


class Config(_Strict):
    broker: BrokerConfig = BrokerConfig()
    kubernetes: KubernetesConfig = KubernetesConfig()
    batches: tuple[BatchConfig, ...] = Field(default_factory=_default_batches)
    thresholds: tuple[int, int, int] = (100, 500, 1000)
    exporter: ExporterConfig = ExporterConfig()
    alerts: AlertsConfig = AlertsConfig()
    autoscaler: AutoscalerConfig = AutoscalerConfig()
    claims: ClaimsConfig = ClaimsConfig()
    events: EventsConfig = EventsConfig()

    @field_validator("thresholds")
    @classmethod
    def _thresholds(cls, v: tuple[int, int, int]) -> tuple[int, int, int]:
        if not 0 < v[0] < v[1] < v[2]:
            raise ValueError("expected three ascending positive numbers, e.g. [100, 500, 1000]")
        return v

    @model_validator(mode="after")
    def _unique(self) -> Config:
        problems = []
        for field in ("queue", "deployment"):
            seen: set[str] = set()
            for i, b in enumerate(self.batches):
                name = getattr(b, field)
                if name in seen:
                    problems.append(f"batches[{i}].{field}: duplicate {field} {name!r}")
                seen.add(name)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @model_validator(mode="after")
    def _lease_margin(self) -> Config:
        le = self.autoscaler.leader_election
        margin = le.lease_duration_seconds - le.renew_deadline_seconds
        timeout = self.kubernetes.request_timeout_seconds
        if self.autoscaler.leader_election_on() and margin < timeout:
            raise ValueError(
                "autoscaler.leader_election: lease_duration_seconds - renew_deadline_seconds "
                f"({margin:g}) must be at least kubernetes.request_timeout_seconds ({timeout:g}), "
                "so that a leader stops writing before another replica can take over"
            )
        return self

    def batch(self, queue: str) -> BatchConfig | None:
        return next((b for b in self.batches if b.queue == queue), None)
