"""The `batches[]` and `other_queues[]` sections: the queues batchctl scales, and the ones
it only alerts on (docs/configuration.md)."""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from batchctl.config.base import _DNS_LABEL, _QUEUE_NAME, _Strict
from batchctl.units import shown

# A batch at 0 replicas starts at most once per this long for small work (reason
# from_zero_interval), unless the config says otherwise.
DEFAULT_FROM_ZERO_INTERVAL_SECONDS = 180.0
# Small work waits at 0 replicas up to the interval, then a tick and a pod's start:
# the interval stays this much below alerts.no_consumers_for (CeleryQueueNoConsumers).
NO_CONSUMERS_MARGIN_SECONDS = 60.0


def _queue_name(v: str) -> str:
    if not _QUEUE_NAME.match(v):
        raise ValueError(
            f"must be 1-200 characters of letters, digits and _ . : @ -, got {shown(v)}"
        )
    return v


def _deployment_name(v: str) -> str:
    if not _DNS_LABEL.match(v):
        raise ValueError(
            "must be a Kubernetes Deployment name (lower case, digits, '-'), e.g. "
            f"celery-batch0, got {shown(v)}"
        )
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
    # A typical (mean) task's run time: plans a deadline (`--finish-by`, `batchctl plan`)
    # before the pace is measured. None: only the measured pace plans.
    task_seconds: float | None = Field(None, gt=0)
    # A step down that would stop a replica running a task waits up to this long for an
    # idle one (reason busy_workers); a batch whose max_task_seconds is longer does not
    # wait: its tasks outlast any wait, and the grace period lets them finish.
    busy_wait_seconds: float = Field(900.0, ge=0)
    # With Celery's events, an idle batch goes to min_replicas at once (not after
    # idle_after_seconds) when the recent gaps between its work were longer than its pods
    # take to start (autoscaler/policy/gaps.py).
    adaptive_idle: bool = True
    # At 0 replicas, small work (one replica drains it within target_drain_seconds)
    # starts a replica at most once per this many seconds, none waiting longer; 0: at
    # once every time. None: DEFAULT_FROM_ZERO_INTERVAL_SECONDS, or less when
    # alerts.no_consumers_for needs it (Config.from_zero_interval_of).
    from_zero_interval_seconds: float | None = Field(None, ge=0)
    # What one replica of this batch costs per hour and emits (grams CO2e per hour);
    # None: the `cost:` section's.
    price_per_replica_hour: float | None = Field(None, ge=0)
    co2e_grams_per_replica_hour: float | None = Field(None, ge=0)
    # The workers' --concurrency and worker_prefetch_multiplier. One replica holds at
    # most their product in `unacked`: the autoscaler never shrinks below
    # ceil(in_flight / (concurrency * prefetch)).
    worker_concurrency: int = Field(4, ge=1)
    prefetch_multiplier: int = Field(4, ge=1)
    # false: decide and report (a hold with reason observe_only, a log line), never act;
    # a site turns autoscaling on one batch at a time.
    autoscale: bool = True
    # This batch's depth tiers (info, warning, critical) for its alerts and the status
    # page; null: the top-level `thresholds`.
    thresholds: tuple[int, int, int] | None = None

    @field_validator("thresholds")
    @classmethod
    def _thresholds(cls, v: tuple[int, int, int] | None) -> tuple[int, int, int] | None:
        return None if v is None else _ascending(v)

    @field_validator("queue")
    @classmethod
    def _queue(cls, v: str) -> str:
        return _queue_name(v)

    @field_validator("deployment")
    @classmethod
    def _deployment(cls, v: str) -> str:
        return _deployment_name(v)

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


def _ascending(v: tuple[int, int, int]) -> tuple[int, int, int]:
    if not 0 < v[0] < v[1] < v[2]:
        raise ValueError("expected three ascending positive numbers, e.g. [100, 500, 1000]")
    return v


class OtherQueueConfig(_Strict):
    """A queue that is not a batch (the application's `celery`, `default`...), alerted on
    because the site asks: queue discovery shows every queue, but only the batches and
    these raise alerts on their depth. Never scaled, never claimed."""

    queue: str
    # Its own depth tiers (info, warning, critical), e.g. [2000, 5000, 10000]: an
    # ordinary queue's normal backlog is not a batch's.
    thresholds: tuple[int, int, int]
    # The Deployment that consumes it: with one, CeleryQueueNoConsumers (and
    # CeleryQueueStuck, CeleryWorkersNotReady) watch it too; without, depth only.
    deployment: str | None = None

    @field_validator("queue")
    @classmethod
    def _queue(cls, v: str) -> str:
        return _queue_name(v)

    @field_validator("deployment")
    @classmethod
    def _deployment(cls, v: str | None) -> str | None:
        return None if v is None else _deployment_name(v)

    @field_validator("thresholds")
    @classmethod
    def _thresholds(cls, v: tuple[int, int, int]) -> tuple[int, int, int]:
        return _ascending(v)
