"""What every alert rule module shares: the rule dict, PromQL and duration helpers.

The rule functions themselves live by concern in queue_rules.py, backend_rules.py and
autoscaler_rules.py; rules.py assembles them into groups.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

Rule = dict[str, Any]
Group = dict[str, Any]

# Go template snippets used in annotations. `$value` is the expression's sample value.
COUNT = '{{ $value | printf "%.0f" }}'
QUEUE = "{{ $labels.queue }}"
DEPLOYMENT = "{{ $labels.deployment }}"
INSTANCE = "{{ $labels.instance }}"


def one_per_site(expr: str, replica_labels: Sequence[str]) -> str:
    """`expr` with the labels that tell replicas apart (alerts.replica_labels: instance,
    pod) aggregated away. Each replica of the exporter exports the same queues, claims
    and events, so `max` (they agree) gives one alert per queue however many run, and a
    rollout, which replaces every pod, neither restarts a `for` nor resolves and
    re-fires an alert (kubernetes-mixin does the same for kube-state-metrics)."""
    if not replica_labels:
        return expr
    return f"max without ({', '.join(replica_labels)}) (\n  {indent(expr)}\n)"


def series(metric: str, selector: str, *extra: str) -> str:
    """`metric{selector,extra...}`; empty matchers are dropped."""
    matchers = ",".join(x for x in (selector, *extra) if x)
    return f"{metric}{{{matchers}}}"


def queue_regex(queues: list[str]) -> str:
    """A PromQL string literal body matching exactly these queue names."""
    # re.escape for RE2, then double the backslashes for the PromQL string literal.
    return "|".join(re.escape(q) for q in queues).replace("\\", "\\\\")


def with_deployment(value: str, deployment_condition: str) -> str:
    """`value` (per queue) where the queue's Deployment meets the condition.

    Adding `0 * condition` keeps the value and copies the `deployment` label onto the
    alert, so its description and runbook can name the Deployment to scale.
    """
    return (
        f"(\n  {indent(value)}\n)\n"
        f"+ ignoring (deployment) group_left (deployment)\n"
        f"  0 * ({deployment_condition})"
    )


def indent(text: str, by: str = "  ") -> str:
    return text.replace("\n", "\n" + by)


# Milliseconds per Prometheus duration unit, largest first.
_UNIT_MS = {
    "y": 365 * 86_400_000,
    "w": 7 * 86_400_000,
    "d": 86_400_000,
    "h": 3_600_000,
    "m": 60_000,
    "s": 1_000,
    "ms": 1,
}


def scale_duration(duration: str, factor: int) -> str:
    """`duration` (a Prometheus duration such as 1m or 1h30m) times `factor`.

    Written in the largest unit that divides it exactly: 2 x 1m is 2m, 2 x 45s is 90s.
    """
    ms = factor * sum(
        int(count) * _UNIT_MS[unit]
        for count, unit in re.findall(r"([0-9]+)(ms|[smhdwy])", duration)
    )
    unit = next(u for u, size in _UNIT_MS.items() if ms % size == 0)
    return f"{ms // _UNIT_MS[unit]}{unit}"


def alert(
    name: str,
    expr: str,
    for_: str,
    severity: str,
    summary: str,
    description: str,
) -> Rule:
    return {
        "alert": name,
        "expr": expr,
        "for": for_,
        "labels": {"severity": severity},
        "annotations": {"summary": summary, "description": description},
    }
