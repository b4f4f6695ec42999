"""Prometheus alerting rules for batchctl, as plain data built from the Config.

Every alert is a function of the config returning rule dicts; `groups()` collects them
into rule groups, leaves out what the config switches off, and a final pass
(`add_runbook_links`) gives every alert its `runbook_url` (the kubernetes-mixin way).

Tiers and inhibition. alerts/alertmanager.example.yml lets a higher tier of an alert
inhibit the lower ones for the same queue. On the way up the `for` durations order the
tiers (critical waits least, so it reaches Alertmanager first). On the way down the
tiers would all resolve in the same rule evaluation when a queue drains at once, and
that is not safe: inside Alertmanager the inhibitor and the dispatcher consume alert
updates independently, so the inhibitor can already see the critical tier resolved
while the dispatcher's warning group still holds the warning as firing; a group flush
in that window sends the warning as *firing*, although it was inhibited all along.
Rule order in the file does not prevent it: Prometheus sends the resolutions in file
order, but the two consumers run in goroutines of their own. The window is short, yet
flushes hit it more often than chance suggests: a group flushes every group_interval
after its first alert arrived, which was right after an evaluation, so when
group_interval is a multiple of the evaluation interval (as usual) its flushes fall
just when a later evaluation's notifications are being processed.

So the tiers have hysteresis on the way down, staggered by tier
(`alerts.tier_resolve_hold`, H): the warning tier looks at the highest depth of the
last H, the critical tier at the highest depth of the last 2H, and the
CeleryQueueNoConsumers critical tier stays firing for H after its condition ends. A
tier then resolves at least one rule evaluation after the tiers it inhibits (H must be
at least the evaluation interval; twice it for CeleryQueueNoConsumers), so Alertmanager
has the lower tier as resolved before the inhibiting tier goes away. Firing is
unchanged: the highest depth of a window that ends now is the current depth while the
queue rises. A dip shorter than the hold no longer resets a tier's `for`, and an
alert's value is the highest depth of its window. One case is left: a queue that
falls below the critical threshold, stays between warning and critical for about H
(within one evaluation interval) and then drops below warning resolves both tiers in
the same evaluation again.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

from batchctl import metrics as n
from batchctl.config import Config
from batchctl.reasons import GUARD_REASONS

Rule = dict[str, Any]
Group = dict[str, Any]

# Go template snippets used in annotations. `$value` is the expression's sample value.
COUNT = '{{ $value | printf "%.0f" }}'
QUEUE = "{{ $labels.queue }}"
DEPLOYMENT = "{{ $labels.deployment }}"
INSTANCE = "{{ $labels.instance }}"

QUEUE_LENGTH_HIGH = "CeleryQueueLengthHigh"
QUEUE_NO_CONSUMERS = "CeleryQueueNoConsumers"
IDLE_REPLICAS = "CeleryIdleReplicas"
QUEUE_STUCK = "CeleryQueueStuck"
QUEUE_MEMORY_HIGH = "CeleryQueueMemoryHigh"
BROKER_MEMORY_HIGH = "CeleryBrokerMemoryHigh"
BROKER_DOWN = "CeleryBrokerDown"
KUBERNETES_API_DOWN = "CeleryKubernetesApiDown"
EXPORTER_DOWN = "CeleryExporterDown"
AUTOSCALER_AT_CAP = "CeleryAutoscalerAtCap"
AUTOSCALER_HELD = "CeleryAutoscalerHeld"
BATCH_CLAIM_EXPIRED = "CeleryBatchClaimExpired"
UNCLAIMED_BATCH_IN_USE = "CeleryUnclaimedBatchInUse"

ALL_ALERTS: tuple[str, ...] = (
    QUEUE_LENGTH_HIGH,
    QUEUE_NO_CONSUMERS,
    IDLE_REPLICAS,
    QUEUE_STUCK,
    QUEUE_MEMORY_HIGH,
    BROKER_MEMORY_HIGH,
    BROKER_DOWN,
    KUBERNETES_API_DOWN,
    EXPORTER_DOWN,
    AUTOSCALER_AT_CAP,
    AUTOSCALER_HELD,
    BATCH_CLAIM_EXPIRED,
    UNCLAIMED_BATCH_IN_USE,
)


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
        f"(\n  {_indent(value)}\n)\n"
        f"+ ignoring (deployment) group_left (deployment)\n"
        f"  0 * ({deployment_condition})"
    )


def _indent(text: str, by: str = "  ") -> str:
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


# --- queues -------------------------------------------------------------------------


def queue_length_high(cfg: Config) -> list[Rule]:
    """Three tiers on the queue depth, from the operations page's rules of thumb.

    info is instant; warning uses the highest depth of the last H and critical that of
    the last 2H (H = `tier_resolve_hold`), so after a drop info resolves at once,
    warning H later and critical 2H later: each tier outlives the ones it inhibits.
    """
    a = cfg.alerts
    info, warning, critical = cfg.thresholds
    length = series(n.QUEUE_LENGTH.name, a.selector)
    hold = a.tier_resolve_hold
    tiers = [
        (
            "info",
            f"{length} > {info}",
            a.for_tier[0],
            f"more than {info}",
            f"Under {info} is good and under {warning} fine: check that it is being "
            "consumed and drains.",
        ),
        (
            "warning",
            f"max_over_time({length}[{hold}]) > {warning}",
            a.for_tier[1],
            f"more than {warning}",
            f"It is heading for {critical}, where Redis memory is at risk: check the "
            "workers and slow the producer.",
        ),
        (
            "critical",
            f"max_over_time({length}[{scale_duration(hold, 2)}]) >= {critical}",
            a.for_tier[2],
            f"{critical} or more",
            "A backlog this size can fill Redis memory and take the site down: act now.",
        ),
    ]
    return [
        alert(
            QUEUE_LENGTH_HIGH,
            expr,
            for_,
            severity,
            f"Celery queue {QUEUE} has {limit} messages waiting.",
            f"Queue {QUEUE} has {COUNT} messages waiting ({limit}) for {for_}. {advice}",
        )
        for severity, expr, for_, limit, advice in tiers
    ]


def queue_no_consumers(cfg: Config) -> list[Rule]:
    """Messages waiting for a Deployment with no ready replica: the "crash the site" case."""
    a = cfg.alerts
    length = series(n.QUEUE_LENGTH.name, a.selector)
    no_ready = f"{series(n.DEPLOYMENT_READY.name, a.selector)} == 0"
    critical = cfg.thresholds[2]
    grows = f"{length} > 0 and delta({length}[{a.growth_window}]) > 0"
    critical_now = with_deployment(f"{length} >= {critical}\nor\n({grows})", no_ready)
    # The critical tier inhibits the warning tier, so it must resolve later (see the
    # module docstring). `now or max_over_time((now)[H:])`: the instant condition fires
    # exactly as before; the subquery (the condition at each evaluation step of the
    # last H) keeps it firing for H after the condition last held, whether the queue
    # drained or a replica became ready. Only a subquery can hold the whole condition,
    # the growth test and the Deployment match included; its labels are the
    # condition's (queue, deployment).
    critical_held = (
        f"(\n  {_indent(critical_now)}\n)\n"
        f"or\n"
        f"max_over_time(\n  (\n    {_indent(critical_now, '    ')}\n  )[{a.tier_resolve_hold}:]\n)"
    )
    summary = f"Nobody consumes Celery queue {QUEUE}."
    base = (
        f"{COUNT} messages wait in queue {QUEUE} while Deployment {DEPLOYMENT} has had "
        f"0 ready replicas for {a.no_consumers_for}."
    )
    return [
        alert(
            QUEUE_NO_CONSUMERS,
            with_deployment(f"{length} > 0", no_ready),
            a.no_consumers_for,
            "warning",
            summary,
            f"{base} They pile up in Redis until a worker runs: claim the batch and scale "
            "it up, or stop the producer.",
        ),
        alert(
            QUEUE_NO_CONSUMERS,
            critical_held,
            a.no_consumers_for,
            "critical",
            summary,
            f"{base} The queue is at {critical} or more, or still growing: Redis memory is "
            "at risk. Scale the Deployment up or stop the producer now.",
        ),
    ]


def idle_replicas(cfg: Config) -> list[Rule]:
    """Workers running with nothing waiting and nothing in flight: money and CO2."""
    a = cfg.alerts
    work = f"{series(n.QUEUE_LENGTH.name, a.selector)} + {series(n.QUEUE_UNACKED.name, a.selector)}"
    return [
        alert(
            IDLE_REPLICAS,
            f"{series(n.DEPLOYMENT_REPLICAS.name, a.selector)} > 0\n"
            f"and ignoring (deployment)\n  ({work} == 0)",
            a.idle_replicas_for,
            "warning",
            f"Deployment {DEPLOYMENT} runs idle workers.",
            f"Deployment {DEPLOYMENT} has {COUNT} replicas, but queue {QUEUE} has had no "
            f"waiting and no in-flight messages for {a.idle_replicas_for}. Idle workers "
            "cost money and CO2: scale it to 0 and release the claim.",
        )
    ]


def queue_stuck(cfg: Config) -> list[Rule]:
    """Ready consumers, yet the oldest message keeps ageing: nobody takes messages."""
    a = cfg.alerts
    age = series(n.QUEUE_OLDEST_AGE.name, a.selector)
    # An untouched tail ages one second per second; a queue that is being consumed
    # oldest-first keeps a steady age. Half a second per second separates the two.
    ageing = f"{age} > 0\nand deriv({age}[{a.growth_window}]) > 0.5"
    return [
        alert(
            QUEUE_STUCK,
            with_deployment(ageing, f"{series(n.DEPLOYMENT_READY.name, a.selector)} > 0"),
            a.stuck_for,
            "warning",
            f"Celery queue {QUEUE} is not being consumed.",
            f"The oldest message in queue {QUEUE} is {{{{ $value | humanizeDuration }}}} "
            f"old and has kept ageing for {a.stuck_for} although Deployment {DEPLOYMENT} "
            "has ready replicas: its workers do not take messages (wrong queue, hung, or "
            "busy with long tasks).",
        )
    ]


# --- broker -------------------------------------------------------------------------


def queue_memory_high(cfg: Config) -> list[Rule]:
    """One queue holds a large share of Redis maxmemory (big task arguments)."""
    a = cfg.alerts
    # `> 0` drops a broker without maxmemory: no limit means no share to speak of.
    limit = f"{series(n.BROKER_MEMORY_MAX.name, a.selector)} > 0"
    return [
        alert(
            QUEUE_MEMORY_HIGH,
            f"{series(n.QUEUE_MEMORY.name, a.selector)}\n"
            # `group_left ()`: a bare `group_left (` would read the divisor as a label list.
            f"/ ignoring (queue) group_left ()\n  ({limit})\n"
            f"> {a.queue_memory_share:g}",
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
            f"{used}\n/ {limit}\n> {share:g}",
            a.memory_for,
            severity,
            f"The Celery broker (Redis) uses more than {share:.0%} of its maxmemory.",
            f"Redis read by {INSTANCE} uses {{{{ $value | humanizePercentage }}}} of its "
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
    a = cfg.alerts
    up = series(n.UP, a.selector)
    return [
        alert(
            EXPORTER_DOWN,
            f"{up} == 0\nor\nabsent({up})",
            a.down_for,
            "critical",
            "Prometheus cannot scrape the batchctl exporter.",
            f"{{{{ with $labels.instance }}}}Target {{{{ . }}}} is down{{{{ else }}}}No target "
            f"matches {{{a.selector}}}{{{{ end }}}} for {a.down_for}. Without the exporter "
            "no queue, broker or replica alert can fire.",
        )
    ]


# --- autoscaler and claims (issue 5) ----------------------------------------------------


def autoscaler_at_cap(cfg: Config) -> list[Rule]:
    a = cfg.alerts
    length = series(n.QUEUE_LENGTH.name, a.selector)
    desired = series(n.AUTOSCALER_DESIRED.name, a.autoscaler_selector)
    cap = series(n.AUTOSCALER_MAX.name, a.autoscaler_selector)
    # A cap of 0 means the batch is switched off: CeleryQueueNoConsumers covers that.
    return [
        alert(
            AUTOSCALER_AT_CAP,
            f"(\n  {length} > 0\n  and delta({length}[{a.growth_window}]) > 0\n)\n"
            f"and on (queue)\n  (\n    {desired} >= {cap}\n    and {cap} > 0\n  )",
            a.at_cap_for,
            "warning",
            f"Batch {QUEUE} is at its replica cap and its backlog still grows.",
            f"The autoscaler has kept batch {QUEUE} at its max_replicas for {a.at_cap_for} "
            f"while the backlog kept growing (now {COUNT} waiting). Raise max_replicas if "
            "the shared services allow, or slow the producer.",
        )
    ]


def autoscaler_held(cfg: Config) -> list[Rule]:
    """Scale-up blocked by a guard for long; holds for other reasons are routine."""
    a = cfg.alerts
    guards = f'reason=~"{"|".join(GUARD_REASONS)}"'
    return [
        alert(
            AUTOSCALER_HELD,
            f"{series(n.AUTOSCALER_HOLD.name, a.autoscaler_selector, guards)} > 0",
            a.held_for,
            "warning",
            f"The autoscaler has held batch {QUEUE} for long.",
            f"The autoscaler has held batch {QUEUE} for {a.held_for} "
            "({{ $labels.reason }}): a guard query returns samples, so a shared service "
            "(DB, Redis, Elasticsearch) looks unhealthy, or Prometheus is unreachable.",
        )
    ]


def batch_claim_expired(cfg: Config) -> list[Rule]:
    a = cfg.alerts
    expiry = series(n.BATCH_CLAIM_EXPIRY.name, a.selector)
    claimed = series(n.BATCH_CLAIMED.name, a.selector)
    # `* ... (claimed == 1)` multiplies by 1: keeps the seconds past expiry, adds holder.
    return [
        alert(
            BATCH_CLAIM_EXPIRED,
            f"(time() - {expiry} > 0)\n* ignoring (holder) group_left (holder)\n  ({claimed} == 1)",
            a.claim_expired_for,
            "warning",
            f"The claim on batch {QUEUE} has expired.",
            f"The claim on batch {QUEUE} by {{{{ $labels.holder }}}} expired "
            "{{ $value | humanizeDuration }} ago and was neither renewed nor released. "
            "The autoscaler drains the batch to 0; the holder should release it.",
        )
    ]


def unclaimed_batch_in_use(cfg: Config) -> list[Rule]:
    a = cfg.alerts
    queues = [b.queue for b in cfg.batches if b.require_claim]
    if not queues:
        return []
    only = f'queue=~"{queue_regex(queues)}"'
    waiting = f"max by (queue) ({series(n.QUEUE_LENGTH.name, a.selector, only)}) > 0"
    replicas = f"max by (queue) ({series(n.DEPLOYMENT_REPLICAS.name, a.selector, only)}) > 0"
    claimed = series(n.BATCH_CLAIMED.name, a.selector)
    return [
        alert(
            UNCLAIMED_BATCH_IN_USE,
            f"(\n  {waiting}\n  or\n  {replicas}\n)\nunless on (queue)\n  ({claimed} == 1)",
            a.unclaimed_for,
            "warning",
            f"Batch {QUEUE} is in use but nobody has claimed it.",
            f"Batch {QUEUE} has had work or workers for {a.unclaimed_for} ({COUNT} "
            "waiting messages, or replicas when none wait) but no claim. Claim it so "
            "colleagues know whose it is, or stop the producer and scale it to 0.",
        )
    ]


# --- assembly -------------------------------------------------------------------------

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
    broker: list[RuleFn] = []
    if a.queue_memory_alert:
        broker.append(queue_memory_high)
    broker += [broker_memory_high, broker_down]
    if kube:
        broker.append(kubernetes_api_down)
    broker.append(exporter_down)
    scaler: list[RuleFn] = []
    if autoscaler and a.autoscaler_alerts:
        scaler += [autoscaler_at_cap, autoscaler_held]
    if autoscaler and a.claim_alerts:
        scaler += [batch_claim_expired, unclaimed_batch_in_use]
    return {"batchctl.queues": queues, "batchctl.broker": broker, "batchctl.autoscaler": scaler}


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
