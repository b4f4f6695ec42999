"""The configuration schema shared by the exporter, alerts, dashboard and autoscaler.

Every key, its default and its check; `batchctl.config.load` turns a file into a
`Config` and problems into one line each. docs/configuration.md documents every key
(tests/docs/test_docs.py keeps it complete).
"""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from batchctl.config.alerts import AlertsConfig
from batchctl.config.autoscaler import AutoscalerConfig, GuardConfig, LeaderElectionConfig
from batchctl.config.base import _base_url, _prom_duration_ms, _Strict
from batchctl.config.batches import (
    DEFAULT_FROM_ZERO_INTERVAL_SECONDS,
    NO_CONSUMERS_MARGIN_SECONDS,
    BatchConfig,
    OtherQueueConfig,
    _ascending,
)
from batchctl.config.broker import (
    DEFAULT_PRIORITY_STEPS,
    DEFAULT_SEP,
    SENTINEL_KWARGS,
    BrokerConfig,
)
from batchctl.config.claims import ClaimsConfig
from batchctl.config.cost import CostConfig
from batchctl.config.kubernetes import KubernetesConfig, pod_namespace
from batchctl.cost import Prices

# The sections live in modules of their own; their names stay importable from here.
__all__ = [
    "DEFAULT_PRIORITY_STEPS",
    "DEFAULT_SEP",
    "SENTINEL_KWARGS",
    "AlertsConfig",
    "AutoscalerConfig",
    "BatchConfig",
    "BrokerConfig",
    "ClaimsConfig",
    "Config",
    "CostConfig",
    "EventsConfig",
    "ExporterConfig",
    "GuardConfig",
    "KubernetesConfig",
    "LeaderElectionConfig",
    "OtherQueueConfig",
    "pod_namespace",
]


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
    # /metrics gzipped (level 1) when the scraper accepts it, as Prometheus always does:
    # ~15x smaller for ~1 ms per 1,000 queues of CPU (benchmarks/README.md).
    gzip: bool = True

    @field_validator("autoscaler_url")
    @classmethod
    def _autoscaler_url(cls, v: str | None) -> str | None:
        # The sidecar's base URL: the status page adds /api/v1/decisions.
        return (
            None
            if v is None
            else _base_url(v, "http://127.0.0.1:9809", "/api/v1/decisions", path_ok=False)
        )

    @field_validator("listen")
    @classmethod
    def _listen(cls, v: str) -> str:
        host, sep, port = v.rpartition(":")
        if not sep or not port.isdigit() or not 0 <= int(port) <= 65535 or not host.isascii():
            raise ValueError("expected HOST:PORT, e.g. 0.0.0.0:9808 or [::]:9808")
        return v


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
    # Which queues each worker consumes, from its own answer to Celery's `active_queues`
    # control command: asked when a worker appears, then every refresh; a worker that
    # does not answer within the timeout (remote control off, a broker user that may
    # not publish) has unknown queues, never guessed. false: never ask.
    worker_queues: bool = True
    worker_queues_refresh_seconds: float = Field(300.0, ge=10, le=86400)
    control_timeout_seconds: float = Field(1.0, gt=0, le=30)


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
    # Queues that are not batches but get depth alerts all the same (none by default).
    other_queues: tuple[OtherQueueConfig, ...] = ()
    # What a replica-hour costs (money, CO2e): what each batch and claim cost is shown.
    cost: CostConfig = CostConfig()

    @field_validator("thresholds")
    @classmethod
    def _thresholds(cls, v: tuple[int, int, int]) -> tuple[int, int, int]:
        return _ascending(v)

    @model_validator(mode="after")
    def _across_sections(self) -> Config:
        # One validator for every check across sections: pydantic stops at the first
        # after-validator that raises, and all of them belong in one pass.
        problems = self._duplicates() + self._lease_margin() + self.broker.rabbitmq_problems()
        problems += self._claim_store() + self._zero_wait()
        if problems:
            raise ValueError("\n".join(problems))  # one line each (config/load.py)
        return self

    def _duplicates(self) -> list[str]:
        problems = []
        entries: list[tuple[str, BatchConfig | OtherQueueConfig]]
        entries = [(f"batches[{i}]", b) for i, b in enumerate(self.batches)]
        entries += [(f"other_queues[{i}]", o) for i, o in enumerate(self.other_queues)]
        for field in ("queue", "deployment"):
            seen: set[str] = set()
            for where, b in entries:
                name = getattr(b, field)
                if name is None:
                    continue
                if name in seen:
                    problems.append(f"{where}.{field}: duplicate {field} {name!r}")
                seen.add(name)
        return problems

    def _lease_margin(self) -> list[str]:
        le = self.autoscaler.leader_election
        margin = le.lease_duration_seconds - le.renew_deadline_seconds
        timeout = self.kubernetes.request_timeout_seconds
        if self.autoscaler.leader_election_on() and margin < timeout:
            return [
                "autoscaler.leader_election: lease_duration_seconds - renew_deadline_seconds "
                f"({margin:g}) must be at least kubernetes.request_timeout_seconds ({timeout:g}), "
                "so that a leader stops writing before another replica can take over"
            ]
        return []

    def _claim_store(self) -> list[str]:
        if self.claims.store == "kubernetes" and not self.kubernetes.enabled:
            return [
                "claims.store: kubernetes keeps the claims in Leases, but kubernetes.enabled "
                "is false: enable Kubernetes, or set claims.store: redis (sqlite with a "
                "RabbitMQ broker)"
            ]
        if self.claims.store == "redis" and self.broker.kind == "rabbitmq":
            return [
                "claims.store: redis keeps claims in the broker's Redis, but broker.url is "
                "RabbitMQ, which keeps no claims; set claims.store: kubernetes (Leases, in "
                "a cluster) or sqlite (a file, for one machine)"
            ]
        return []

    def _no_consumers_seconds(self) -> float:
        return (_prom_duration_ms(self.alerts.no_consumers_for) or 0) / 1000

    def _zero_wait(self) -> list[str]:
        limit = max(0.0, self._no_consumers_seconds() - NO_CONSUMERS_MARGIN_SECONDS)
        return [
            f"batches[{i}].from_zero_interval_seconds: {b.from_zero_interval_seconds:g} lets "
            "small work wait that long at 0 replicas, and a pod's start more, too close to "
            f"alerts.no_consumers_for ({self.alerts.no_consumers_for}), after which "
            f"CeleryQueueNoConsumers fires: set at most {limit:g} (a minute below it; 0 "
            "starts at once), or raise alerts.no_consumers_for"
            for i, b in enumerate(self.batches)
            if b.from_zero_interval_seconds is not None and b.from_zero_interval_seconds > limit
        ]

    def from_zero_interval_of(self, b: BatchConfig) -> float:
        """`b`'s from_zero_interval_seconds; unset: DEFAULT_FROM_ZERO_INTERVAL_SECONDS,
        lowered to a minute below alerts.no_consumers_for (never below 0)."""
        if b.from_zero_interval_seconds is not None:
            return b.from_zero_interval_seconds
        limit = self._no_consumers_seconds() - NO_CONSUMERS_MARGIN_SECONDS
        return max(0.0, min(DEFAULT_FROM_ZERO_INTERVAL_SECONDS, limit))

    def batch(self, queue: str) -> BatchConfig | None:
        return next((b for b in self.batches if b.queue == queue), None)

    def prices_of(self, queue: str) -> Prices:
        """What a replica-hour of `queue` costs: its batch's prices, else `cost:`'s."""
        b = self.batch(queue)
        c = self.cost
        price = b.price_per_replica_hour if b is not None else None
        grams = b.co2e_grams_per_replica_hour if b is not None else None
        return Prices(
            c.price_per_replica_hour if price is None else price,
            c.co2e_grams_per_replica_hour if grams is None else grams,
            c.currency,
        )

    def thresholds_of(self, queue: str) -> tuple[int, int, int]:
        """The depth tiers of `queue`: its batch's or other_queues entry's own, else the
        top-level `thresholds`."""
        b = self.batch(queue)
        if b is not None:
            return b.thresholds or self.thresholds
        other = next((o for o in self.other_queues if o.queue == queue), None)
        return other.thresholds if other is not None else self.thresholds

    def tier_groups(self) -> list[tuple[tuple[int, int, int], tuple[str, ...]]]:
        """The queues that get depth alerts, grouped by their tiers (the batches, then
        other_queues), in config order: one set of rules per group."""
        groups: dict[tuple[int, int, int], list[str]] = {}
        for b in self.batches:
            groups.setdefault(b.thresholds or self.thresholds, []).append(b.queue)
        for o in self.other_queues:
            groups.setdefault(o.thresholds, []).append(o.queue)
        return [(t, tuple(qs)) for t, qs in groups.items()]

    def watched_deployments(self) -> dict[str, str]:
        """queue -> Deployment for every queue whose consumers the exporter watches: the
        batches' and the other_queues entries that name one."""
        out = {o.queue: o.deployment for o in self.other_queues if o.deployment}
        out.update({b.queue: b.deployment for b in self.batches})
        return out

    @property
    def snapshot_url(self) -> str | None:
        """Where the autoscaler sidecar takes its snapshot: autoscaler.snapshot_url when
        the config sets it, else the exporter this config describes (exporter.listen of
        the config, not an exporter's --listen flag; a wildcard host is reached on
        loopback). None: read in process."""
        default = self.autoscaler.snapshot_url
        if "snapshot_url" in self.autoscaler.model_fields_set:
            return default
        host, _, port = self.exporter.listen.rpartition(":")
        host = host.strip("[]")
        if int(port) == 0:  # any free port: nothing to derive from
            return default
        host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
        if ":" in host:  # IPv6, its zone (fe80::1%eth0) escaped as URLs write it
            return f"http://[{host.replace('%', '%25')}]:{int(port)}"
        return f"http://{host}:{int(port)}"
