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
BATCH_BEHIND_DEADLINE = "CeleryBatchBehindDeadline"


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


def batch_behind_deadline(cfg: Config) -> list[Rule]:
    """A claim with a deadline (`batchctl claim --finish-by`) whose work would be done after
    it at the batch's pace (+Inf: nothing drains), for `behind_deadline_for`: the
    autoscaler paces to finish in time, so falling behind means something holds it (a
    guard, the cap, pods that do not become ready) or the work grew."""
    a = cfg.alerts
    expected = series(n.BATCH_EXPECTED_FINISH.name, a.selector)
    finish_by = series(n.BATCH_FINISH_BY.name, a.selector)
    # Each side one series per queue first (every exporter replica exports both), so
    # that the subtraction matches one to one.
    late = (
        f"{one_per_site(expected, a.replica_labels)}\n"
        f"- {one_per_site(finish_by, a.replica_labels)}\n> 0"
    )
    return [
        alert(
            BATCH_BEHIND_DEADLINE,
            late,
            a.behind_deadline_for,
            "warning",
            f"Batch {QUEUE} will not finish by its claim's deadline.",
            f"At its current pace batch {QUEUE} would finish "
            "{{ $value | humanizeDuration }} after the deadline of its claim (batchctl "
            f"claim --finish-by), and has for {a.behind_deadline_for}. The autoscaler "
            "paces a batch to finish in time: see why it holds (a guard, the cap, pods "
            "not ready), then add replicas by hand, move the deadline, or accept it.",
        )
    ]
