"""The baseline: KEDA's Redis list scaler + the Horizontal Pod Autoscaler, as most teams set it up.

A pure model, stepped by the simulator once per simulated second, of a ScaledObject with
one `redis` trigger (listName = the queue, listLength 5, activationListLength 0),
pollingInterval 30 s, cooldownPeriod 300 s, minReplicaCount 0 and no `advanced.behavior`,
so that the HPA runs its default algorithm (kubernetes pkg/controller/podautoscaler):

- KEDA's operator loop, every pollingInterval: LLEN of the one list (the base list: the
  priority lists `Q\\x06\\x163`... are other keys and invisible to it). Active when the length
  is above activationListLength. Active at 0 replicas -> scale to 1. Inactive for
  cooldownPeriod since the last active poll, with replicas > 0 -> scale to 0. Only KEDA
  moves 0 <-> 1; the HPA does nothing while the target is at 0 (ScalingDisabled).
- The HPA, every 15 s (--horizontal-pod-autoscaler-sync-period) while replicas > 0: an
  external metric with an AverageValue target of listLength, so
  usageRatio = metric / (listLength * replicas); within the 0.1 tolerance keep the count,
  else desired = ceil(metric / listLength). Then (normalizeDesiredReplicas, used when the
  HPA has no `behavior`): the highest recommendation of the last 300 s
  (downscale stabilization), clamped to [minReplicas = 1, min(maxReplicas,
  max(2 * current, 4))].
- The metric the HPA reads: KEDA's metrics server queries the scaler on each HPA request
  unless the trigger sets `useCachedMetrics: true`, in which case the value of the last
  poll is served. The default (fresh) is modelled; `use_cached_metrics` switches.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace


@dataclass(frozen=True, slots=True)
class KedaSettings:
    max_replicas: int = 5
    polling_interval_seconds: float = 30.0
    cooldown_period_seconds: float = 300.0
    list_length: int = 5
    activation_list_length: int = 0
    min_replica_count: int = 0
    hpa_sync_seconds: float = 15.0
    tolerance: float = 0.1
    downscale_stabilization_seconds: float = 300.0
    use_cached_metrics: bool = False
    # Kubernetes' default terminationGracePeriodSeconds (the simulator applies it).
    termination_grace_seconds: float = 30.0


@dataclass(frozen=True, slots=True)
class KedaState:
    next_poll: float = 0.0
    next_sync: float = 0.0
    last_active: float | None = None
    cached_metric: int = 0
    # (time, recommendation) of recent HPA syncs, for the stabilization window.
    recommendations: tuple[tuple[float, int], ...] = field(default_factory=tuple)


def scale_up_limit(current: int) -> int:
    """The HPA's per-sync growth limit without `behavior`: max(2 x current, 4)."""
    return max(2 * current, 4)


def hpa_recommendation(metric: int, current: int, list_length: int, tolerance: float) -> int:
    """GetExternalPerPodMetricReplicas with an AverageValue target."""
    ratio = metric / (list_length * current)
    if abs(1.0 - ratio) <= tolerance:
        return current
    return math.ceil(metric / list_length)


def step(
    state: KedaState, settings: KedaSettings, now: float, base_list_length: int, current: int
) -> tuple[int, KedaState]:
    """Advance KEDA + HPA to `now`; return the replicas they ask for and the new state.

    `base_list_length` is LLEN of the queue's base list at `now`; `current` is the
    Deployment's replica count.
    """
    desired = current
    if state.last_active is None:
        # KEDA starts counting the cooldown from when it first sees the ScaledObject.
        state = replace(state, last_active=now)
    if now >= state.next_poll:
        active = base_list_length > settings.activation_list_length
        last_active = now if active else state.last_active
        assert last_active is not None
        if active and current == 0:
            desired = max(1, settings.min_replica_count)
        elif (
            not active
            and current > settings.min_replica_count
            and settings.min_replica_count == 0
            and now - last_active >= settings.cooldown_period_seconds
        ):
            desired = 0
        state = replace(
            state,
            next_poll=now + settings.polling_interval_seconds,
            last_active=last_active,
            cached_metric=base_list_length,
        )
    if now >= state.next_sync:
        state = replace(state, next_sync=now + settings.hpa_sync_seconds)
        # The HPA leaves a target at 0 alone, and KEDA's own move this second wins.
        if current > 0 and desired == current:
            metric = state.cached_metric if settings.use_cached_metrics else base_list_length
            rec = hpa_recommendation(metric, current, settings.list_length, settings.tolerance)
            window = settings.downscale_stabilization_seconds
            kept = tuple((t, r) for t, r in state.recommendations if t >= now - window)
            recent = (*kept, (now, rec))
            stabilized = max(r for _, r in recent)
            hpa_min = max(1, settings.min_replica_count)
            upper = min(settings.max_replicas, scale_up_limit(current))
            desired = min(max(stabilized, hpa_min), upper)
            state = replace(state, recommendations=recent)
    return desired, state
