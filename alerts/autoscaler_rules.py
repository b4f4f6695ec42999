"""Alert rules on the autoscaler and on batch claims (issue 5)."""

from __future__ import annotations

from alerts.common import COUNT, QUEUE, Rule, alert, one_per_site, queue_regex, series
from batchctl import metrics as n
from batchctl.config import Config
from batchctl.reasons import GUARD_REASONS

AUTOSCALER_AT_CAP = "CeleryAutoscalerAtCap"
AUTOSCALER_HELD = "CeleryAutoscalerHeld"
BATCH_CLAIM_EXPIRED = "CeleryBatchClaimExpired"
UNCLAIMED_BATCH_IN_USE = "CeleryUnclaimedBatchInUse"


def autoscaler_at_cap(cfg: Config) -> list[Rule]:
    a = cfg.alerts
    length = series(n.QUEUE_LENGTH.name, a.selector)
    desired = series(n.AUTOSCALER_DESIRED.name, a.autoscaler_selector)
    cap = series(n.AUTOSCALER_MAX.name, a.autoscaler_selector)
    # A cap of 0 means the batch is switched off: CeleryQueueNoConsumers covers that.
    return [
        alert(
            AUTOSCALER_AT_CAP,
            one_per_site(
                f"(\n  {length} > 0\n  and delta({length}[{a.growth_window}]) > 0\n)\n"
                f"and on (queue)\n  (\n    {desired} >= {cap}\n    and {cap} > 0\n  )",
                a.replica_labels,
            ),
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
            one_per_site(
                f"{series(n.AUTOSCALER_HOLD.name, a.autoscaler_selector, guards)} > 0",
                a.replica_labels,
            ),
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
            one_per_site(
                f"(time() - {expiry} > 0)\n* ignoring (holder) group_left (holder)\n"
                f"  ({claimed} == 1)",
                a.replica_labels,
            ),
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
