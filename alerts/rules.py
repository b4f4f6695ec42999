"""Prometheus alerting rules for batchctl, as plain data built from the Config.

Every alert is a function of the config returning rule dicts; `groups()` collects them
into rule groups, leaves out what the config switches off, and a final pass
(`add_runbook_links`) gives every alert its `runbook_url` (the kubernetes-mixin way).

The rule functions live by concern: alerts/queue_rules.py (its docstring explains why
the depth tiers resolve staggered, for inhibition in Alertmanager), backend_rules.py,
autoscaler_rules.py, event_rules.py (Celery's task events) and inflight_rules.py
(stranded in-flight work); the helpers they share are in common.py.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

from alerts.autoscaler_rules import (
    AUTOSCALER_AT_CAP,
    AUTOSCALER_HELD,
    BATCH_BEHIND_DEADLINE,
    BATCH_CLAIM_EXPIRED,
    UNCLAIMED_BATCH_IN_USE,
    autoscaler_at_cap,
    autoscaler_held,
    batch_behind_deadline,
    batch_claim_expired,
    unclaimed_batch_in_use,
)
from alerts.backend_rules import (
    BROKER_DOWN,
    BROKER_MEMORY_HIGH,
    BROKER_RESOURCE_ALARM,
    EXPORTER_DOWN,
    KUBERNETES_API_DOWN,
    QUEUE_MEMORY_HIGH,
    broker_down,
    broker_memory_high,
    broker_resource_alarm,
    exporter_down,
    kubernetes_api_down,
    queue_memory_high,
)
from alerts.common import Group, Rule
from alerts.event_rules import (
    BATCH_NO_PROGRESS,
    TASK_FAILURE_RATIO_HIGH,
    batch_no_progress,
    task_failure_ratio_high,
)
from alerts.inflight_rules import UNACKED_STRANDED, unacked_stranded
from alerts.queue_rules import (
    IDLE_REPLICAS,
    QUEUE_LENGTH_HIGH,
    QUEUE_NO_CONSUMERS,
    QUEUE_STUCK,
    WORKERS_NOT_READY,
    idle_replicas,
    queue_length_high,
    queue_no_consumers,
    queue_stuck,
    workers_not_ready,
)
from batchctl.config import Config

ALL_ALERTS: tuple[str, ...] = (
    QUEUE_LENGTH_HIGH,
    QUEUE_NO_CONSUMERS,
    IDLE_REPLICAS,
    QUEUE_STUCK,
    WORKERS_NOT_READY,
    UNACKED_STRANDED,
    QUEUE_MEMORY_HIGH,
    BROKER_MEMORY_HIGH,
    BROKER_DOWN,
    BROKER_RESOURCE_ALARM,
    KUBERNETES_API_DOWN,
    EXPORTER_DOWN,
    AUTOSCALER_AT_CAP,
    AUTOSCALER_HELD,
    BATCH_CLAIM_EXPIRED,
    UNCLAIMED_BATCH_IN_USE,
    BATCH_BEHIND_DEADLINE,
    TASK_FAILURE_RATIO_HIGH,
    BATCH_NO_PROGRESS,
)

RuleFn = Callable[[Config], list[Rule]]


def _enabled(cfg: Config) -> dict[str, list[RuleFn]]:
    """Rule functions per group, with the optional ones the config switches off removed."""
    a = cfg.alerts
    kube = cfg.kubernetes.enabled
    autoscaler = cfg.autoscaler.enabled
    queues: list[RuleFn] = [queue_length_high]
    if kube:
        queues.append(queue_no_consumers)
        if a.idle_replicas_alert:
            queues.append(idle_replicas)
        if a.stuck_alert:
            queues.append(queue_stuck)
        if a.workers_not_ready_alert:
            queues.append(workers_not_ready)
    if a.stranded_alert:
        queues.append(unacked_stranded)
    broker: list[RuleFn] = []
    if a.queue_memory_alert:
        broker.append(queue_memory_high)
    broker += [broker_memory_high, broker_down, broker_resource_alarm]
    if kube:
        broker.append(kubernetes_api_down)
    broker.append(exporter_down)
    scaler: list[RuleFn] = []
    if autoscaler and a.autoscaler_alerts:
        scaler += [autoscaler_at_cap, autoscaler_held]
    if autoscaler and a.claim_alerts:
        scaler += [batch_claim_expired, unclaimed_batch_in_use, batch_behind_deadline]
    tasks: list[RuleFn] = []
    if a.event_alerts:
        tasks.append(task_failure_ratio_high)
        if kube:
            tasks.append(batch_no_progress)
    return {
        "batchctl.queues": queues,
        "batchctl.broker": broker,
        "batchctl.autoscaler": scaler,
        "batchctl.tasks": tasks,
    }


def add_runbook_links(groups: list[Group], pattern: str) -> list[Group]:
    """A copy of `groups` where every alert without a runbook_url gets one."""
    out = copy.deepcopy(groups)
    for group in out:
        for rule in group["rules"]:
            if "alert" in rule:
                ann = rule.setdefault("annotations", {})
                ann.setdefault("runbook_url", pattern.replace("{alert}", rule["alert"]))
    return out


def groups(cfg: Config) -> list[Group]:
    """All rule groups for `cfg`, runbook links included; empty groups left out."""
    raw = []
    for name, fns in _enabled(cfg).items():
        rules = [rule for fn in fns for rule in fn(cfg)]
        if rules:
            raw.append({"name": name, "rules": rules})
    return add_runbook_links(raw, cfg.alerts.runbook_url)


def alert_names(cfg: Config) -> list[str]:
    """Distinct alert names that `cfg` renders, in file order."""
    seen: dict[str, None] = {}
    for g in groups(cfg):
        for r in g["rules"]:
            seen.setdefault(r["alert"], None)
    return list(seen)
