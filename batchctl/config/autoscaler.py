"""The `autoscaler:` section: the loop, its backend, guards and leader election."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from batchctl.config.base import _DNS_SUBDOMAIN, _base_url, _Strict


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
        # The exporter's base URL: the sidecar adds /api/v1/snapshot.
        return (
            None
            if v is None
            else _base_url(v, "http://127.0.0.1:9808", "/api/v1/snapshot", path_ok=False)
        )

    @field_validator("prometheus_url")
    @classmethod
    def _prometheus_url(cls, v: str | None) -> str | None:
        # A path is fine: Prometheus may serve under a prefix (--web.route-prefix).
        return None if v is None else _base_url(v, "http://prometheus:9090", "/api/v1/query")

    @property
    def stale_limit_seconds(self) -> float:
        """How old a snapshot may be before it counts as missing: two ticks by default."""
        return self.stale_after_seconds or 2 * self.interval_seconds

    def leader_election_on(self, backend: str | None = None) -> bool:
        """Whether replicas elect a leader: as configured, else with the kubernetes
        backend (`backend`: the one in use, when --backend overrides the config's)."""
        le = self.leader_election.enabled
        return (backend or self.backend) == "kubernetes" if le is None else le

    @model_validator(mode="after")
    def _guards(self) -> AutoscalerConfig:
        if self.guards and self.prometheus_url is None:
            raise ValueError(
                "guards need prometheus_url (where their queries go), e.g. "
                "http://prometheus:9090; without it every guard is unknown and holds "
                "every batch: set prometheus_url, or remove the guards"
            )
        return self

    @model_validator(mode="after")
    def _local(self) -> AutoscalerConfig:
        if self.backend == "local" and not self.local_app:
            raise ValueError(
                "local_app is required with backend local: the Celery app the "
                "worker processes run (the `celery -A` argument, e.g. myproject.celery)"
            )
        return self
